"""Local servers for the tests: started as child processes on free loopback ports, each in its
own process group, and stopped with everything they started. A server that is left listening
fails the run (see ``ServerProcess.stop``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


class ServerProcess:
    """One server: ``start()`` waits until ``ready()`` holds; ``stop()`` ends its whole process
    group and checks that the port is closed again."""

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
    ) -> None:
        self.name, self.argv, self.port, self.cwd = name, list(argv), port, cwd
        self.ready = ready or (lambda: port_open(port))
        self.env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"{name}-{port}.log"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        if port_open(self.port):
            raise RuntimeError(f"{self.name}: port {self.port} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {self.start_timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None
        deadline = time.monotonic() + 10
        while port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: port {self.port} still open after stop")
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
