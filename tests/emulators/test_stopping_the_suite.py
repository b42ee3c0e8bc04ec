"""Stopping ``python -m devtools.emulator_suite`` (``make emulators``) at any moment leaves nothing
behind (issue 15). Each run starts the suite as a child in its own session, on free ports, and
signals its process group after a delay: spread over the time the suite takes to be ready (so
before, during and after firebase-tools starts), plus once when it is ready. Afterwards, every time:
no process it started is alive (found by a mark in their environment, which every descendant
inherits), none of its ports listens, and the working tree is as it was (functions/.env.local and
.secret.local, no firebase.emulators-test.json, no new *-debug.log). Real processes, no mocks.

Also: after a ``kill -9`` the next start (``--recover`` here) ends what the killed suite left and
puts the files back; a start that finds a port taken, or another suite running, says by what."""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.emulator_suite import (
    ENV_FILES,
    STATE_DIR,
    TEST_CONFIG,
    Ports,
    SuiteBusy,
    SuiteUnavailable,
    WorkingTreeState,
    firebase_command,
    java_home,
)
from devtools.firestore_emulator import EmulatorUnavailable, emulator_jar
from devtools.servers import ROOT, tagged
from tests.conftest import unavailable
from tests.emulators.processes import Run, kind_of, listening, marked

pytestmark = pytest.mark.slow

READY = "Function logs follow"  # printed once the suite is ready
BUSY = "another emulator suite is running"
RUNS = 10  # per mode, spread over the time to ready; plus one run once ready
EXIT_TIMEOUT = 60.0  # seconds from the last signal to the suite's exit
TERM, INT = signal.SIGTERM, signal.SIGINT
PAIRS = [(INT, INT), (TERM, TERM), (INT, TERM), (TERM, INT)]  # the "two signals 0.2 s apart" mode


@pytest.fixture(scope="module", autouse=True)
def suite_can_run() -> None:
    try:
        firebase_command(), java_home(), emulator_jar()
    except (SuiteUnavailable, EmulatorUnavailable) as exc:
        unavailable(f"the Firebase emulator suite: {exc}")


def no_suite_running(wait: float = 900.0) -> None:
    """Wait until no other suite runs in this working tree (another test session's, say)."""
    state = WorkingTreeState()
    try:
        state.acquire(wait)
    except SuiteBusy as exc:
        pytest.fail(f"still busy after {wait:.0f}s: {exc}")
    state.release()


def tree_state() -> dict[str, Any]:
    """The files a suite may change, and the *-debug.log files firebase-tools may write."""
    files = {str(p): p.read_bytes() if p.is_file() else None for p in (*ENV_FILES, TEST_CONFIG)}
    files[str(STATE_DIR / "running.json")] = None if not (STATE_DIR / "running.json").exists() else "a record"
    logs = {str(p): p.stat().st_mtime_ns for p in [*ROOT.glob("*-debug.log"), *ROOT.glob("functions/*-debug.log")]}
    return {"files": files, "debug logs": logs}


@dataclass
class Outcome:
    delay: float
    signals: tuple[signal.Signals, ...]
    phase: str  # what was running when the first signal came
    exit_code: int | None
    stop_seconds: float
    left: dict[int, str]
    open_ports: set[int]
    tree_changed: list[str]
    seconds: float  # the whole run

    @property
    def clean(self) -> bool:
        return self.exit_code is not None and not self.left and not self.open_ports and not self.tree_changed

    def row(self) -> str:
        names = "+".join(s.name for s in self.signals)
        verdict = "clean" if self.clean else f"LEFT {self.left} ports {self.open_ports} {self.tree_changed}"
        return (
            f"{self.delay:6.2f} s  {names:<15} {self.phase:<24} exit {self.exit_code!s:<4} "
            f"stopped in {self.stop_seconds:5.2f} s  {verdict}"
        )


def run_suite(
    tmp: Path, signals: tuple[signal.Signals, ...], delay: float | None, tries: int = 3
) -> tuple[Outcome, dict[str, float]]:
    """Start the suite, signal its group after ``delay`` seconds (None: once it is ready), check.
    Returns the outcome and when, in seconds from the start, firebase-tools appeared and the suite
    was ready (those it reached)."""
    for _ in range(tries):
        no_suite_running()
        before = tree_state()
        ports = Ports.free()
        argv = [sys.executable, "-m", "devtools.emulator_suite"]
        argv += [f"--{name.replace('_', '-')}-port={port}" for name, port in ports.all().items()]
        run = Run(argv, cwd=ROOT, log=tmp / f"suite-{time.monotonic_ns()}.log").start()
        try:
            milestones: dict[str, float] = {}
            deadline = run.started + (delay if delay is not None else 240.0)
            while time.monotonic() < deadline and run.proc is not None and run.proc.poll() is None:
                if READY in run.output():
                    milestones.setdefault("ready", time.monotonic() - run.started)
                    if delay is None:
                        break
                time.sleep(0.02)
            assert run.watch is not None
            kinds = run.watch.kinds_alive()
            firebase = [
                t for pid, t in run.watch.first_seen.items() if kind_of(run.watch.seen[pid]) == "firebase-tools"
            ]
            if firebase:
                milestones["firebase-tools"] = min(firebase) - run.started
            phase = (
                "ready"
                if READY in run.output()
                else "firebase-tools starting"
                if "firebase-tools" in kinds
                else "before firebase-tools"
            )
            signalled = time.monotonic()
            run.signal_group(*signals)
            last_signal = time.monotonic()
            exit_code = run.wait(EXIT_TIMEOUT)
            stopped = time.monotonic()
            left = marked(run.mark)  # at once: the suite must have ended them before it exited
            assert run.watch is not None
            open_ports = listening(run.watch.ports | set(ports.all().values()))
            after = tree_state()
            changed = [
                f"{part} {name}"
                for part in before
                for name in {*before[part], *after[part]}
                if before[part].get(name) != after[part].get(name)
            ]
        finally:
            run.kill_everything()
        if BUSY in run.output():  # another session's suite started meanwhile: try again
            continue
        outcome = Outcome(
            delay=(signalled - run.started),
            signals=signals,
            phase=phase,
            exit_code=exit_code,
            stop_seconds=stopped - last_signal,
            left=left,
            open_ports=open_ports,
            tree_changed=changed,
            seconds=stopped - run.started,
        )
        if not outcome.clean:
            print(run.output()[-3000:])
        return outcome, milestones
    pytest.fail(f"another emulator suite kept starting in this working tree ({tries} tries)")


@pytest.fixture(scope="module")
def milestones(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, float]]:
    """When firebase-tools appears and when the suite is ready, measured once (that run is
    checked too)."""
    outcome, seen = run_suite(tmp_path_factory.mktemp("ready"), (TERM,), delay=None)
    assert outcome.phase == "ready", outcome.row()
    assert outcome.clean, outcome.row()
    yield seen


@pytest.mark.parametrize("mode", ["one SIGTERM to the group", "two signals 0.2 s apart"])
def test_the_suite_stopped_at_any_moment_leaves_no_process_port_or_file_behind(
    mode: str, milestones: dict[str, float], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    # Random delays between 0.5 s and the time to ready: 2 before firebase-tools starts, the others
    # while it starts (one in each equal slice of that span); then one once the suite is ready.
    firebase, ready = milestones["firebase-tools"], milestones["ready"]
    delays: list[float | None] = [rng.uniform(0.5, max(0.5, firebase - 0.1)) for _ in range(2)]
    delays += [firebase + (ready - firebase) * (i + rng.random()) / (RUNS - 2) for i in range(RUNS - 2)]
    delays.append(None)
    outcomes = []
    for i, delay in enumerate(delays):
        signals = (TERM,) if mode.startswith("one") else PAIRS[i % len(PAIRS)]
        outcome, _ = run_suite(tmp_path, signals, delay)
        outcomes.append(outcome)
        # Start-up times vary with the machine's load: a run meant to come before firebase-tools
        # that came after it is done again, earlier (every run is checked all the same).
        while i < 2 and delay and outcome.phase != "before firebase-tools" and delay > 0.6:
            delay = max(0.5, delay * 0.6)
            outcome, _ = run_suite(tmp_path, signals, delay)
            outcomes.append(outcome)
    took = time.monotonic() - began

    with capsys.disabled():
        print(f"\n{mode}: {len(outcomes)} runs in {took:.0f} s, seed {seed}")
        print(f"  (firebase-tools started after {firebase:.1f} s, the suite was ready after {ready:.1f} s)")
        for outcome in outcomes:
            print("  " + outcome.row())
    assert all(o.clean for o in outcomes), "\n".join(o.row() for o in outcomes if not o.clean)
    assert {o.phase for o in outcomes} == {"before firebase-tools", "firebase-tools starting", "ready"}


# -- kill -9, and a second start ---------------------------------------------------------------------


def test_after_a_kill_9_recovery_ends_what_the_suite_left_and_puts_the_files_back(tmp_path: Path) -> None:
    no_suite_running()
    env_local = ENV_FILES[0]
    seeded = not env_local.exists()
    if seeded:  # an original of our own, to see it put back
        env_local.write_text("# someone's own settings\nLONGFORM_BUCKET=mine\n")
    original = env_local.read_bytes()
    try:
        ports = Ports.free()
        argv = [sys.executable, "-m", "devtools.emulator_suite"]
        argv += [f"--{name.replace('_', '-')}-port={port}" for name, port in ports.all().items()]
        run = Run(argv, cwd=ROOT, log=tmp_path / "suite.log").start()
        try:
            deadline = time.monotonic() + 240
            while READY not in run.output():
                assert time.monotonic() < deadline and run.proc and run.proc.poll() is None, run.output()[-3000:]
                time.sleep(0.1)
            assert run.proc is not None
            run.proc.kill()  # kill -9: no clean-up at all
            run.wait(10)
            left = marked(run.mark)
            assert left, "a killed suite leaves its children running (they are in their own sessions)"
            assert env_local.read_bytes() != original  # the suite's own file is still there

            recovery = Run([sys.executable, "-m", "devtools.emulator_suite", "--recover"], ROOT, tmp_path / "r.log")
            assert recovery.start().wait(60) == 0, recovery.output()
            assert "did not stop cleanly" in recovery.output()
            assert marked(run.mark) == {}
            assert not listening(set(ports.all().values()))
            assert env_local.read_bytes() == original
            assert not ENV_FILES[1].exists() or not ENV_FILES[1].read_text().startswith("# Written by devtools")
            assert not TEST_CONFIG.exists() and not (STATE_DIR / "running.json").exists()
        finally:
            run.kill_everything()
    finally:
        if seeded:
            env_local.unlink(missing_ok=True)


def test_a_start_that_finds_a_port_taken_names_the_port_its_use_and_the_process(tmp_path: Path) -> None:
    no_suite_running()
    ports = Ports.free()
    holder = Run(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(ports.functions)], ROOT, tmp_path / "h.log"
    ).start()
    try:
        deadline = time.monotonic() + 30
        while not listening({ports.functions}):
            assert time.monotonic() < deadline, holder.output()
            time.sleep(0.1)
        argv = [sys.executable, "-m", "devtools.emulator_suite"]
        argv += [f"--{name.replace('_', '-')}-port={port}" for name, port in ports.all().items()]
        suite = Run(argv, ROOT, tmp_path / "suite.log", env={"COLUMNS": "300"}).start()
        assert suite.wait(60) == 1
        said = " ".join(suite.output().split())
        assert holder.proc is not None
        assert f"port {ports.functions} (the Functions emulator) is in use by pid {holder.proc.pid}" in said, said
        assert "http.server" in said
        assert marked(suite.mark) == {}
    finally:
        holder.kill_everything()


def test_a_start_while_another_suite_runs_in_the_working_tree_says_so(tmp_path: Path) -> None:
    no_suite_running()
    state = WorkingTreeState()
    state.acquire()
    state.begin(tag="emulator-suite-test/")  # as a running suite would
    try:
        suite = Run([sys.executable, "-m", "devtools.emulator_suite", "--free-ports"], ROOT, tmp_path / "s.log").start()
        assert suite.wait(60) == 1
        said = " ".join(suite.output().split())
        assert "another emulator suite is running in this working tree" in said and "stop it first" in said, said
    finally:
        state.undo()
        state.release()
    assert not tagged("emulator-suite-test/")
