"""A pytest run interrupted by Ctrl-C leaves none of the servers the test suite starts itself
running: the Firestore emulator fixture and the Cloud Storage emulator fixture of tests/conftest.py,
and a plain devtools.servers.ServerProcess. Each run is a small pytest session in a child process
(its own session, like a terminal's foreground job) whose one test uses the three and then waits;
SIGINT goes to its process group while the servers start, or once the test runs, once or twice
0.2 s apart. Afterwards no process it started is alive and none of their ports listens."""

from __future__ import annotations

import random
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devtools.firestore_emulator import EmulatorUnavailable, emulator_jar, java
from devtools.servers import ROOT
from devtools.storage_emulator import executable as storage_emulator_executable
from tests.conftest import unavailable
from tests.emulators.processes import Run, kind_of, listening, marked

pytestmark = pytest.mark.slow

INNER = '''
"""Started by tests/emulators/test_interrupting_pytest.py."""
import json
import os
import sys
import time
from pathlib import Path

import pytest

from devtools.servers import ServerProcess, free_port
from tests.conftest import firestore_emulator, storage_emulator  # noqa: F401 (the fixtures)


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory):
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with ServerProcess("http-server", argv, port, log_dir=tmp_path_factory.mktemp("http")) as server:
        yield server


def test_waits_to_be_interrupted(firestore_emulator, storage_emulator, plain_server):
    ports = [firestore_emulator.port, int(storage_emulator.url.rsplit(":", 1)[1]), plain_server.port]
    Path(os.environ["READY_FILE"]).write_text(json.dumps(ports))
    time.sleep(600)
'''


@pytest.fixture(scope="module", autouse=True)
def servers_can_run() -> None:
    try:
        java(), emulator_jar()
    except EmulatorUnavailable as exc:
        unavailable(f"Firestore emulator: {exc}")
    if storage_emulator_executable() is None:
        unavailable("gcp-storage-emulator is not installed")


def interrupted_session(tmp: Path, delay: float | None, signals: int) -> tuple[str, float, Run]:
    """Run the inner session, SIGINT its group ``signals`` times after ``delay`` seconds (None:
    once the test runs); (phase at the first signal, seconds to ready, the run)."""
    folder = tmp / f"session-{time.monotonic_ns()}"
    folder.mkdir()
    (folder / "test_inner.py").write_text(textwrap.dedent(INNER))
    (folder / "pytest.ini").write_text("[pytest]\n")
    ready_file = folder / "ready.json"
    argv = [sys.executable, "-m", "pytest", "test_inner.py", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini"]
    env = {
        "PYTHONPATH": str(ROOT),
        "READY_FILE": str(ready_file),
        "FIRESTORE_EMULATOR_HOST": None,  # the fixture would use that one instead of starting its own
        "STORAGE_EMULATOR_HOST": None,
        "CI": None,
    }
    run = Run(argv, cwd=folder, log=folder / "pytest.log", env=env).start()
    deadline = run.started + (delay if delay is not None else 120.0)
    while time.monotonic() < deadline and not ready_file.exists():
        assert run.proc is not None
        if run.proc.poll() is not None:  # ended by itself: the servers were unavailable, say
            break
        time.sleep(0.02)
    ready_after = time.monotonic() - run.started
    phase = "test running" if ready_file.exists() else "servers starting"
    run.signal_group(*[signal.SIGINT] * signals)
    return phase, ready_after, run


def check(run: Run, phase: str) -> str:
    try:
        exit_code = run.wait(60)
        left = marked(run.mark)
        assert run.watch is not None
        ports = run.watch.ports
        open_ports = listening(ports)
    finally:
        run.kill_everything()
    assert exit_code is not None, f"pytest did not exit after Ctrl-C ({phase}):\n{run.output()[-3000:]}"
    assert not left, f"left running after Ctrl-C ({phase}): {left}\n{run.output()[-3000:]}"
    assert not open_ports, f"still listening after Ctrl-C ({phase}): {open_ports}"
    servers = sorted({kind_of(command) for command in run.watch.seen.values()} - {"other"})
    return f"exit {exit_code:>3}, servers seen: {', '.join(servers) or 'none'}; ports {sorted(ports)}"


def test_ctrl_c_while_the_test_runs_leaves_no_server_running(tmp_path: Path) -> None:
    for signals in (1, 2):
        phase, _, run = interrupted_session(tmp_path, None, signals)
        if phase != "test running" and run.proc is not None and run.proc.poll() == 0:
            pytest.skip(run.output()[-500:])  # the servers were unavailable: the inner test skipped
        assert phase == "test running"
        check(run, f"{signals} x SIGINT while the test runs")


def test_ctrl_c_while_the_servers_start_leaves_no_server_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    phase, ready_after, run = interrupted_session(tmp_path, None, 1)  # measures the time to ready
    check(run, phase)
    assert run.watch is not None
    started: dict[str, float] = {}  # when each server appeared, in seconds from the start
    for pid, at in sorted(run.watch.first_seen.items(), key=lambda item: -item[1]):
        started[kind_of(run.watch.seen[pid])] = round(at - run.started, 2)
    started.pop("other", None)
    first_server = min(started.values(), default=0.0)  # pytest's own start-up comes before
    rng = random.Random(seed := random.randrange(1_000_000))
    # One delay in each of 6 slices of [a little before the first server, ready], and one just
    # after each server appeared in the first run (while it starts).
    start = max(0.3, first_server - 0.3)
    delays = [start + (ready_after - start) * (i + rng.random()) / 6 for i in range(6)]
    delays += [at + rng.uniform(0.0, 0.15) for at in started.values()]
    rows = []
    for i, delay in enumerate(sorted(delays)):
        signals = 1 + i % 2
        phase, _, run = interrupted_session(tmp_path, delay, signals)
        rows.append(f"{delay:5.2f} s  {signals} x SIGINT  {phase:<16} {check(run, phase)}")
    with capsys.disabled():
        print(f"\npytest interrupted: {len(rows)} runs in {time.monotonic() - began:.0f} s")
        print(f"(servers appeared after {started} s, ready after {ready_after:.1f} s, seed {seed})")
        for row in rows:
            print("  " + row)
