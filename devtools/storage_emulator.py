"""The Cloud Storage emulator (PyPI ``gcp-storage-emulator``) as a child process on a free port.
The test session starts one (``storage_emulator`` in tests/conftest.py); the benchmark and the
emulator suite start their own."""

from __future__ import annotations

import shutil
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from devtools.servers import ServerProcess, free_port, http_ready

PROJECT = "demo-longform-test"
ENV = "STORAGE_EMULATOR_HOST"


@dataclass
class StorageEmulator:
    url: str
    server: ServerProcess

    def client(self, **kwargs: Any) -> Any:
        """A client of the emulator. The storage library talks to ``STORAGE_EMULATOR_HOST`` when it
        is set; anonymous credentials keep it from looking for real ones."""
        kwargs.setdefault("credentials", AnonymousCredentials())
        return storage.Client(project=PROJECT, **kwargs)

    def bucket(self, name: str) -> str:
        """Create a bucket named after ``name`` plus a unique suffix, and return its name."""
        bucket = f"{name.lower().replace('_', '-')[:40]}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(bucket)
        return bucket


def executable() -> str | None:
    """The emulator's script beside the running interpreter (the venv), else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "gcp-storage-emulator"
    return str(beside) if beside.is_file() else shutil.which("gcp-storage-emulator")


class StorageEmulatorUnavailable(Exception):
    """The emulator is not installed here."""


def start(log_dir: Path) -> StorageEmulator:
    exe = executable()
    if exe is None:
        raise StorageEmulatorUnavailable("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    server = ServerProcess("storage-emulator", argv, port, ready=http_ready(f"{url}/"), log_dir=log_dir).start()
    return StorageEmulator(url, server)
