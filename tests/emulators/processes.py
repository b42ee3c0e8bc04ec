"""What a child process tree did, seen from outside: every process that carries a mark in its
environment (which every descendant inherits, whatever process group or session it moves to), and
every TCP port those processes listened on. The interruption tests use it to check, independently
of the code under test, that nothing was left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devtools.servers import listening_sockets, ports_of, processes_with

MARK = "LONGFORM_TEST_MARK"


def new_mark() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def marked(mark: str) -> dict[int, str]:
    """The live processes carrying ``mark``: pid → command."""
    return processes_with(MARK, mark)


def listening(ports: set[int]) -> set[int]:
    """Those of ``ports`` that some process listens on (on any address)."""
    return ports & set(listening_sockets().values())


class Watch:
    """Polls, every 0.1 s in a thread, the processes carrying ``mark`` and the ports they listen on."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.seen: dict[int, str] = {}
        self.first_seen: dict[int, float] = {}  # time.monotonic() when each was first seen
        self.ports: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.1)

    def poll(self) -> dict[int, str]:
        """Look now; the processes alive now."""
        sockets = listening_sockets()
        now = marked(self.mark)
        with self._lock:
            for pid in now.keys() - self.seen.keys():
                self.first_seen[pid] = time.monotonic()
            self.seen.update(now)
            for pid in now:
                self.ports |= ports_of(pid, sockets)
        return now

    def kinds_alive(self) -> set[str]:
        """What runs now, by kind: storage, firebase-tools, java, python worker."""
        return {kind_of(command) for command in self.poll().values()} - {"other"}


def kind_of(command: str) -> str:
    if "gcp-storage-emulator" in command:
        return "storage emulator"
    if "firebase" in command and "node" in command:
        return "firebase-tools"
    if command.startswith("java") or "/java " in command:
        return "java"
    if "functions-framework" in command:
        return "functions worker"
    if "http.server" in command:
        return "http.server"
    return "other"


@dataclass
class Run:
    """One child process tree, started in its own session, signalled, and checked afterwards."""

    argv: Sequence[str]
    cwd: Path
    log: Path
    env: Mapping[str, str | None] = field(default_factory=dict)
    mark: str = field(default_factory=new_mark)
    proc: subprocess.Popen[bytes] | None = None
    watch: Watch | None = None
    started: float = 0.0

    def start(self) -> Run:
        env = {k: v for k, v in {**os.environ, **self.env, MARK: self.mark}.items() if v is not None}
        self.watch = Watch(self.mark).__enter__()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started = time.monotonic()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def signal_group(self, *signals: signal.Signals, gap: float = 0.2) -> None:
        """Send the signals to the child's process group (as a terminal's Ctrl-C does), ``gap`` apart."""
        assert self.proc is not None
        for i, sig in enumerate(signals):
            if i:
                time.sleep(gap)
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it had not exited after ``timeout`` (then it is killed)."""
        assert self.proc is not None and self.watch is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.watch.__exit__()

    def kill_everything(self) -> None:
        """The test's own clean-up, whatever happened: SIGKILL every marked process."""
        for pid in marked(self.mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
