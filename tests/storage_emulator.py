"""The Cloud Storage emulator (PyPI ``gcp-storage-emulator``), one per test session.

Import the ``storage_emulator`` fixture into a conftest (``from tests.storage_emulator import
storage_emulator  # noqa: F401``). Several conftests may import it: the first use starts the server
and every fixture hands out that same one, so the suite never runs two.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from tests.servers import ServerProcess, free_port, http_ready

PROJECT = "demo-longform-test"
ENV = "STORAGE_EMULATOR_HOST"
_KEY = pytest.StashKey["StorageEmulator"]()


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


def start(log_dir: Path) -> StorageEmulator:
    exe = executable()
    if exe is None:
        reason = "gcp-storage-emulator is not installed (pip install gcp-storage-emulator)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the Cloud Storage tests", pytrace=False)
        pytest.skip(reason)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    server = ServerProcess("storage-emulator", argv, port, ready=http_ready(f"{url}/"), log_dir=log_dir).start()
    return StorageEmulator(url, server)


@pytest.fixture(scope="session")
def storage_emulator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StorageEmulator:
    """The session's emulator, with ``STORAGE_EMULATOR_HOST`` pointing at it until the session ends."""
    config = request.config
    if _KEY not in config.stash:
        emulator = start(tmp_path_factory.mktemp("storage-emulator"))
        previous = os.environ.get(ENV)
        os.environ[ENV] = emulator.url

        def stop() -> None:
            if previous is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = previous
            emulator.server.stop()

        config.add_cleanup(stop)
        config.stash[_KEY] = emulator
    return config.stash[_KEY]
