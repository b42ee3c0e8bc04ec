"""Blobs as files under one root folder: the embedded BlobStore."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from ..errors import PermanentError
from .blob_keys import key_parts


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        """The file for ``key``. Keys are relative POSIX paths of plain names: no ``..``,
        no absolute paths, nothing that resolves outside the root."""
        path = self.root.joinpath(*key_parts(key))
        if not path.resolve().is_relative_to(self.root):  # a symlink inside the root pointing out
            raise PermanentError(f"blob key {key!r} escapes the store")
        return path

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def upload(self, key: str, path: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy beside the target, then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise PermanentError(f"no blob {key!r}")
        yield path

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        return None  # a local file has no URL to share; its file:// URI is the job's videoUri

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
