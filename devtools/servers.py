"""Local servers for the tests and the emulator suite: started as child processes on free loopback
ports, each in its own session (so a Ctrl-C meant for the parent reaches only the parent), and
stopped with everything they started. A server that is left listening fails the run (see
``ServerProcess.stop``).

Stopping is built to finish whatever happens meanwhile:

- every child carries ``LONGFORM_DEVTOOLS_TAG`` in its environment, which its own children inherit,
  so the clean-up finds them all, including those that left its process group (firebase-tools
  starts its Firestore emulator in a session of its own) or outlived their parent;
- a server is recorded the moment it is spawned, before it is waited for, and ``start`` stops it if
  it is interrupted while waiting; the servers still running when the interpreter exits are
  stopped then (``atexit``);
- ``stop`` holds SIGINT, SIGTERM and SIGHUP until it is done (``signals_deferred``), waits a bounded
  time after SIGTERM, then SIGKILLs the process group and every tagged process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
TAG = "LONGFORM_DEVTOOLS_TAG"  # in the environment of every process a ServerProcess starts
_PROC = Path("/proc")


class JsonHandler(BaseHTTPRequestHandler):
    """The stand-ins' request handler: answers JSON, and keeps the test output quiet."""

    def answer(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ready(url: str) -> Callable[[], bool]:
    """Ready once ``url`` answers anything at all over HTTP (an error status counts)."""

    def check() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False
        return True

    return check


def cloud_sdk_root() -> Path | None:
    """Where the Google Cloud CLI is installed (its emulators' jars are under it); None without gcloud."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    root = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    return Path(root) if root else None


def functions_framework(target: str, env: Mapping[str, str | None], log_dir: Path | None = None) -> ServerProcess:
    """One entry point of functions/main.py served by functions-framework, as production and
    the Functions emulator serve it, on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "functions_framework", "--target", target, "--source", "main.py"]
    return ServerProcess(
        target,
        [*argv, "--port", str(port), "--host", "127.0.0.1"],
        port,
        ready=http_ready(f"http://127.0.0.1:{port}/"),
        cwd=ROOT / "functions",
        env={"PYTHONPATH": str(ROOT / "functions"), **env},
        log_dir=log_dir,
    )


# -- processes, as /proc shows them (Linux; elsewhere these find nothing and process groups remain) --


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process, None if it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    stat = _stat(pid)
    if stat is None:
        if _PROC.is_dir():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[0] != "Z"


def _pids() -> list[int]:
    try:
        return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def environment_of(pid: int) -> dict[str, str]:
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def processes_with(variable: str, prefix: str) -> dict[int, str]:
    """Live processes whose environment has ``variable`` starting with ``prefix``: pid → command."""
    found = {}
    for pid in _pids():
        if pid == os.getpid():
            continue
        value = environment_of(pid).get(variable)
        if value is not None and value.startswith(prefix) and alive(pid):
            found[pid] = command_of(pid)
    return found


def tagged(prefix: str) -> dict[int, str]:
    """Live processes started (directly or not) by a ServerProcess whose tag starts with ``prefix``."""
    return processes_with(TAG, prefix)


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    return [pid for pid in _pids() if (stat := _stat(pid)) and stat[1] == pgid and stat[0] != "Z"]


def command_of(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def listening_sockets() -> dict[int, int]:
    """Every TCP socket listening on this machine that /proc shows: inode → port."""
    sockets = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                sockets[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return sockets


def ports_of(pid: int, sockets: Mapping[int, int] | None = None) -> set[int]:
    """The TCP ports a process listens on."""
    sockets = listening_sockets() if sockets is None else sockets
    ports = set()
    with contextlib.suppress(OSError):
        for fd in (_PROC / str(pid) / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and (inode := int(target[8:-1])) in sockets:
                    ports.add(sockets[inode])
    return ports


def port_holder(port: int) -> tuple[int, str] | None:
    """(pid, command) of the process listening on ``port``, if this user can see it."""
    inodes = {inode for inode, p in listening_sockets().items() if p == port}
    if not inodes:
        return None
    for pid in _pids():
        with contextlib.suppress(OSError):
            for fd in (_PROC / str(pid) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                        return pid, command_of(pid)
    return None


def describe_port(port: int, purpose: str) -> str:
    """'port 5001 (the Functions emulator) is in use by pid 1234: node …' and what to do."""
    holder = port_holder(port)
    if holder is None:
        who = "by a process this user cannot see"
    else:
        pid, command = holder
        mine = environment_of(pid).get(TAG)
        who = f"by pid {pid}: {command[:160]}" + (f" (started by the devtools, tag {mine})" if mine else "")
    return f"port {port} ({purpose}) is in use {who}"


def kill(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def end_processes(
    pids: Sequence[int] = (),
    groups: Sequence[int] = (),
    tag_prefix: str | None = None,
    grace: float = 10.0,
    reap: Callable[[], None] = lambda: None,
) -> dict[int, str]:
    """End processes, with signals held meanwhile: SIGTERM ``pids`` and the process ``groups``
    (each signalled once: firebase-tools takes a second signal as "stop now, skip the clean-up");
    once those processes are gone, SIGTERM whatever is left, including every process tagged
    ``tag_prefix`` (those outside the groups had nobody left to stop them); after ``grace`` seconds
    in all, SIGKILL what remains, until nothing does. ``reap`` waits for children of ours so they
    do not linger as zombies. Returns the processes that survived SIGKILL (none, normally)."""

    def leaders() -> list[int]:
        reap()
        return [pid for pid in pids if alive(pid)]

    def remaining() -> list[int]:
        left = set(leaders())
        for group in groups:
            left.update(group_members(group))
        if tag_prefix is not None:
            left.update(tagged(tag_prefix))
        return sorted(left)

    with signals_deferred():
        deadline = time.monotonic() + grace
        for group in groups:
            killpg(group, signal.SIGTERM)
        kill([pid for pid in pids if pid not in groups], signal.SIGTERM)
        while leaders() and time.monotonic() < deadline:
            time.sleep(0.05)
        kill(remaining(), signal.SIGTERM)
        deadline = min(deadline, time.monotonic() + 3.0)
        while (left := remaining()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(100):  # SIGKILL until nothing is left (one may have started another meanwhile)
            if not left:
                break
            for group in groups:
                killpg(group, signal.SIGKILL)
            kill(left, signal.SIGKILL)
            time.sleep(0.05)
            left = remaining()
        return {pid: command_of(pid) for pid in left}


# -- signals ---------------------------------------------------------------------------------------

_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_holding = threading.local()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs, so a clean-up cannot be cut short by a
    second Ctrl-C or ``kill``; afterwards the first signal held is delivered as it would have been
    (with the default action of SIGTERM, every server still running is stopped first). Only the
    main thread can handle signals; elsewhere, and inside an outer block, this does nothing."""
    if threading.current_thread() is not threading.main_thread() or getattr(_holding, "active", False):
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in _HELD_SIGNALS}
    _holding.active = True
    try:
        yield
    finally:
        _holding.active = False
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        if held:
            first = held[0]
            if previous[first] == signal.SIG_DFL and first != signal.SIGINT:
                stop_all()  # the signal ends the process: nothing after this block will run
            signal.raise_signal(first)


# -- servers ---------------------------------------------------------------------------------------

_running: set[ServerProcess] = set()
_running_lock = threading.Lock()


def stop_all() -> None:
    """Stop every ServerProcess still running (at exit, and before a fatal signal)."""
    with _running_lock:
        servers = list(_running)
    with signals_deferred():
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop(check_port=False)


atexit.register(stop_all)


class ServerProcess:
    """One server: ``start()`` waits until ``ready()`` holds; ``stop()`` ends its whole process
    group and everything it started, and checks that the port is closed again. ``tag`` (default: a
    new one) marks its processes; give servers a common prefix to find them all together."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str | None] | None = None,  # None removes an inherited variable
        cwd: Path = ROOT,
        log_dir: Path | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        tag: str | None = None,
    ) -> None:
        self.name, self.argv, self.port, self.cwd = name, list(argv), port, cwd
        self.ready = ready or (lambda: port_open(port))
        self.tag = tag or f"{name}-{uuid.uuid4().hex[:12]}"
        self.env = {k: v for k, v in {**os.environ, **(env or {}), TAG: self.tag}.items() if v is not None}
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"{name}-{port}.log"
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        if port_open(self.port):
            raise RuntimeError(f"{self.name}: {describe_port(self.port, self.name)}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with signals_deferred(), self.log_path.open("wb") as log:  # spawned and recorded, or neither
                self.proc = subprocess.Popen(
                    self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
                with _running_lock:
                    _running.add(self)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
                if self.ready():
                    return self
                time.sleep(0.1)
            raise RuntimeError(f"{self.name} was not ready after {self.start_timeout}s:\n{self.log()}")
        except BaseException:  # not ready, failed, or interrupted (Ctrl-C) while waiting
            self.stop(check_port=False)
            raise

    def stop(self, check_port: bool = True) -> None:
        """End the server and everything it started (signals held meanwhile); then, with
        ``check_port``, fail if its port is still open."""
        with signals_deferred():
            proc = self.proc
            if proc is None:  # never started, or stopped already
                return

            def reap() -> None:
                with contextlib.suppress(ChildProcessError):
                    proc.poll()

            survivors = end_processes([proc.pid], [proc.pid], self.tag, self.stop_timeout, reap)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            self.proc = None
            with _running_lock:
                _running.discard(self)
            if survivors:
                raise RuntimeError(f"{self.name}: processes survived SIGKILL: {survivors}")
            if check_port:
                deadline = time.monotonic() + 10
                while port_open(self.port):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{self.name}: {describe_port(self.port, 'its port')} after stop")
                    time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
