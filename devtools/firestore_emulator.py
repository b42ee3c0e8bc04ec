"""The Cloud Firestore emulator of the Google Cloud CLI, run by the tests as one java process
(see /work/shared/EMULATORS.md): started directly rather than through ``gcloud emulators``, whose
wrapper leaves the java child running when stopped."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from google.cloud import firestore

from devtools.servers import ROOT, ServerProcess, cloud_sdk_root, free_port, http_ready
from devtools.tokens import emulator_id_token

PROJECT = "demo-longform-test"  # the demo- prefix: never a real project, no credentials
RULES = ROOT / "firestore.rules"
_JAR = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


class EmulatorUnavailable(Exception):
    """This machine cannot run the emulator; the message says why."""


def emulator_jar() -> Path:
    sdk_root = cloud_sdk_root()
    if sdk_root is None:
        raise EmulatorUnavailable("the Google Cloud CLI (gcloud) is not installed")
    jar = sdk_root / _JAR
    if not jar.is_file():
        raise EmulatorUnavailable(
            f"no Firestore emulator at {jar} (gcloud components install cloud-firestore-emulator)"
        )
    return jar


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise EmulatorUnavailable("java is not on PATH (the Firestore emulator runs on Java 17)")
    return path


@dataclass(frozen=True)
class FirestoreEmulator:
    host: str  # 127.0.0.1:PORT, the value of FIRESTORE_EMULATOR_HOST
    port: int
    project: str
    startup_seconds: float

    @property
    def documents_url(self) -> str:
        """The REST root of the documents, for requests evaluated against the security rules."""
        return f"http://{self.host}/v1/projects/{self.project}/databases/(default)/documents"

    def client(self) -> firestore.Client:
        """A client with admin rights (the emulator grants ``Bearer owner`` every access). It reads
        FIRESTORE_EMULATOR_HOST when built, so set it here, whatever a test did to the environment."""
        with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": self.host}):
            return firestore.Client(project=self.project)

    def reset(self) -> None:
        """Delete every document of the project."""
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()


@contextmanager
def running_emulator(rules: Path = RULES, log_dir: Path | None = None) -> Iterator[FirestoreEmulator]:
    """Start the emulator on a free port, enforcing ``rules`` on requests that are not the owner's.
    Under ``firebase emulators:exec`` (FIRESTORE_EMULATOR_HOST already set) use that one instead."""
    running = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if running:
        host, port = running.rsplit(":", 1)
        project = os.environ.get("GCLOUD_PROJECT") or PROJECT
        yield FirestoreEmulator(f"{host}:{port}", int(port), project, 0.0)
        return
    argv = [java(), "-Duser.language=en", "-cp", str(emulator_jar()), _MAIN, "start"]
    port = free_port()
    argv += ["--host=127.0.0.1", f"--port={port}", f"--rules={rules}"]
    started = time.monotonic()
    ready = http_ready(f"http://127.0.0.1:{port}/")
    with ServerProcess("firestore-emulator", argv, port, ready=ready, log_dir=log_dir):
        yield FirestoreEmulator(f"127.0.0.1:{port}", port, PROJECT, time.monotonic() - started)


def unsigned_id_token(uid: str, project: str = PROJECT) -> str:
    """A Firebase ID token without a signature: the emulator evaluates the rules as this user."""
    return emulator_id_token(uid, project)
