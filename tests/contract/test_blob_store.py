"""One contract for every BlobStore: the local folder and Cloud Storage (through its emulator)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.storage_emulator import StorageEmulator
from longform.adapters.gcs_blob_store import GcsBlobStore
from longform.adapters.local_blob_store import LocalBlobStore
from longform.errors import PermanentError
from longform.ports import BlobStore

KEY = "jobs/j1/segments/0.mp4"
INVALID_KEYS = ["", "/etc/passwd", "../outside", "jobs/../../outside", "jobs/./x", "jobs//x", "jobs\\x", "jobs/a b"]
INVALID_KEYS += ["jobs/x/", "jobs/ü.mp4"]


@pytest.fixture(params=["local", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    emulator: StorageEmulator = request.getfixturevalue("storage_emulator")
    return GcsBlobStore(emulator.client(), emulator.bucket("contract"))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.mp4"
    path.write_bytes(os.urandom(100_000))
    return path


def test_an_uploaded_file_reads_back_byte_exact_under_its_own_name(store: BlobStore, source: Path) -> None:
    store.upload(KEY, source)
    with store.local_path(KEY) as path:
        assert path.name == "0.mp4"  # media tools go by the suffix
        assert path.read_bytes() == source.read_bytes()
    assert source.is_file()  # the upload copies; the caller's file stays


def test_an_upload_replaces_the_blob(store: BlobStore, source: Path, tmp_path: Path) -> None:
    store.upload(KEY, source)
    newer = tmp_path / "newer.mp4"
    newer.write_bytes(b"newer")
    store.upload(KEY, newer)
    with store.local_path(KEY) as path:
        assert path.read_bytes() == b"newer"


def test_a_blob_exists_from_its_upload_until_its_delete(store: BlobStore, source: Path) -> None:
    assert not store.exists(KEY)
    store.upload(KEY, source)
    assert store.exists(KEY)
    assert not store.exists("jobs/j1/segments/1.mp4")
    store.delete(KEY)
    assert not store.exists(KEY)


def test_deleting_a_missing_blob_is_fine(store: BlobStore) -> None:
    store.delete(KEY)
    assert not store.exists(KEY)


def test_reading_a_missing_blob_is_a_permanent_error(store: BlobStore) -> None:
    with pytest.raises(PermanentError, match="no blob"), store.local_path(KEY):
        pass


def test_the_uri_names_the_key(store: BlobStore) -> None:
    assert store.uri(KEY).endswith("/" + KEY)


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_every_operation_refuses_a_key_that_is_not_a_plain_relative_path(
    store: BlobStore, source: Path, key: str
) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.uri(key),
        lambda: store.exists(key),
        lambda: store.upload(key, source),
        lambda: store.local_path(key).__enter__(),
        lambda: store.delete(key),
    ]
    for operation in operations:
        with pytest.raises(PermanentError, match="blob key"):
            operation()


def test_list_finds_the_keys_under_a_prefix_in_name_order(store: BlobStore, source: Path) -> None:
    for key in ("jobs/j1/segments/1.mp4", "jobs/j1/segments/0.mp4", "jobs/j1/final/video.mp4", "jobs/j2/frames/0.png"):
        store.upload(key, source)
    assert store.list("jobs/j1/") == ["jobs/j1/final/video.mp4", "jobs/j1/segments/0.mp4", "jobs/j1/segments/1.mp4"]
    assert store.list("jobs/j1/segments/") == ["jobs/j1/segments/0.mp4", "jobs/j1/segments/1.mp4"]
    assert store.list("jobs/j3/") == []


def test_a_uri_gives_back_its_key_and_a_foreign_one_is_refused(store: BlobStore) -> None:
    key = "jobs/j1/segments/0.mp4"
    assert store.key_of(store.uri(key)) == key
    with pytest.raises(PermanentError):
        store.key_of("https://example.com/jobs/j1/segments/0.mp4")
