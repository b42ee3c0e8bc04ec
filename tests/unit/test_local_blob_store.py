from pathlib import Path

import pytest

from longform.adapters.local_blob_store import LocalBlobStore
from longform.errors import PermanentError


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../outside", "jobs/../../outside", "jobs/./x", "jobs//x", "jobs\\x", "jobs/a b", "jobs/x/"],
)
def test_rejects_keys_that_are_not_plain_relative_paths(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(PermanentError, match="blob key"):
        store.path(key)


def test_rejects_a_key_that_escapes_through_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    (root / "jobs").symlink_to(tmp_path)
    with pytest.raises(PermanentError, match="escapes"):
        LocalBlobStore(root).path("jobs/secret.txt")


def test_upload_then_read_back_then_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    store.upload("jobs/j1/segments/0.mp4", src)
    assert store.exists("jobs/j1/segments/0.mp4")
    with store.local_path("jobs/j1/segments/0.mp4") as path:
        assert path.read_bytes() == b"x" * 1000
    assert store.uri("jobs/j1/segments/0.mp4") == (tmp_path / "blobs/jobs/j1/segments/0.mp4").resolve().as_uri()
    store.delete("jobs/j1/segments/0.mp4")
    assert not store.exists("jobs/j1/segments/0.mp4")
    assert [p.name for p in (tmp_path / "blobs/jobs/j1/segments").iterdir()] == []  # no temp files left


def test_reading_a_missing_blob_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="no blob"), LocalBlobStore(tmp_path).local_path("jobs/none.mp4"):
        pass
