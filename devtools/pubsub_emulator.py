"""The Pub/Sub emulator of the Google Cloud CLI (``platform/pubsub-emulator/`` under its root), run
as one java process: by the tests (``pubsub_emulator`` in tests/conftest.py) and, through
firebase-tools, by the emulator suite (devtools/emulator_suite.py).

It is started from a launcher jar of our own (a manifest naming the CLI's jar) rather than the
CLI's ``bin/cloud-pubsub-emulator`` script or ``gcloud beta emulators pubsub start``: one process
to stop, and a command line without "pubsub-emulator" in it, because firebase-tools, when its
Pub/Sub emulator does not stop in 4 s, runs ``kill -9`` on every process of the machine whose
command line says "pubsub-emulator" (``PUBSUB_KILL_COMMAND`` in its pubsubEmulator.js): another
session's emulator among them.

Clients find it with ``PUBSUB_EMULATOR_HOST=127.0.0.1:PORT`` (google-cloud-pubsub talks to it over
gRPC with no credentials); it also answers Pub/Sub's REST API (``/v1/projects/P/topics/T:publish``),
which the Transcoder stand-in uses to publish as the service does.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from devtools.servers import ServerProcess, cloud_sdk_root, free_port, http_ready

PROJECT = "demo-longform-test"  # the demo- prefix: never a real project, no credentials
ENV = "PUBSUB_EMULATOR_HOST"
_LIB = "platform/pubsub-emulator/lib"


class PubsubEmulatorUnavailable(Exception):
    """This machine cannot run the emulator; the message says why."""


def emulator_jar() -> Path:
    """The Google Cloud CLI's Pub/Sub emulator jar."""
    sdk_root = cloud_sdk_root()
    if sdk_root is None:
        raise PubsubEmulatorUnavailable("the Google Cloud CLI (gcloud) is not installed")
    jars = sorted((sdk_root / _LIB).glob("cloud-pubsub-emulator-*-all.jar"))
    if not jars:
        raise PubsubEmulatorUnavailable(
            f"no Pub/Sub emulator in {sdk_root / _LIB} (gcloud components install pubsub-emulator)"
        )
    return jars[-1]


def main_class(jar: Path) -> str:
    with zipfile.ZipFile(jar) as archive:
        manifest = archive.read("META-INF/MANIFEST.MF").decode()
    for line in manifest.splitlines():
        if line.startswith("Main-Class:"):
            return line.split(":", 1)[1].strip()
    raise PubsubEmulatorUnavailable(f"{jar} names no Main-Class")


def launcher_jar(folder: Path, main: str, class_path: Path, name: str) -> Path:
    """A jar holding only a manifest: ``java -jar`` it runs ``main`` from ``class_path``."""
    manifest = f"Manifest-Version: 1.0\nMain-Class: {main}\nClass-Path: {class_path.as_uri()}\n"
    # Manifest lines are at most 72 bytes; longer ones continue on the next line after a space.
    lines = []
    for line in manifest.splitlines():
        lines += [line[:72]] + [" " + line[i : i + 71] for i in range(72, len(line), 71)]
    launcher = folder / name
    with zipfile.ZipFile(launcher, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "\r\n".join(lines) + "\r\n\r\n")
    return launcher


def pubsub_launcher(folder: Path) -> Path:
    """The launcher of the CLI's Pub/Sub emulator (its name avoids "pubsub-emulator", see above)."""
    jar = emulator_jar()
    return launcher_jar(folder, main_class(jar), jar, "pubsub-fake-launcher.jar")


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise PubsubEmulatorUnavailable("java is not on PATH (the Pub/Sub emulator runs on Java 17)")
    return path


@dataclass(frozen=True)
class PubsubEmulator:
    host: str  # 127.0.0.1:PORT, the value of PUBSUB_EMULATOR_HOST
    project: str

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def create_topic(self, topic: str) -> str:
        """Create ``topic`` (an id) unless it exists; its full name."""
        name = f"projects/{self.project}/topics/{topic}"
        self._put(name, {})
        return name

    def create_subscription(self, subscription: str, topic: str) -> str:
        """A pull subscription to ``topic`` (an id), made unless it exists; its full name."""
        name = f"projects/{self.project}/subscriptions/{subscription}"
        self._put(name, {"topic": f"projects/{self.project}/topics/{topic}"})
        return name

    def exists(self, name: str) -> bool:
        """Whether the topic or subscription ``projects/P/…`` exists."""
        try:
            with urllib.request.urlopen(f"{self.url}/v1/{name}", timeout=10):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise

    def subscriber(self) -> Any:
        """A google-cloud-pubsub SubscriberClient of this emulator (it reads PUBSUB_EMULATOR_HOST
        when made, so that is set here, whatever the environment says)."""
        from google.cloud import pubsub_v1

        with mock.patch.dict(os.environ, {ENV: self.host}):
            return pubsub_v1.SubscriberClient()

    def _put(self, name: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/v1/{name}", json.dumps(body).encode(), {"Content-Type": "application/json"}, method="PUT"
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # ALREADY_EXISTS
                said = exc.read().decode(errors="replace")
                raise RuntimeError(f"Pub/Sub emulator: PUT {name}: {exc.code} {said}") from exc


@contextmanager
def running_emulator(log_dir: Path, project: str = PROJECT) -> Iterator[PubsubEmulator]:
    """Start the emulator on a free port; stop it at the end of the block."""
    launcher = pubsub_launcher(log_dir)
    port = free_port()
    argv = [java(), "-jar", str(launcher), "--host=127.0.0.1", f"--port={port}"]
    with ServerProcess("pubsub-fake", argv, port, ready=http_ready(f"http://127.0.0.1:{port}/"), log_dir=log_dir):
        yield PubsubEmulator(f"127.0.0.1:{port}", project)
