"""Blobs as files under one root folder: the embedded BlobStore."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
import urllib.request
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

    def key_of(self, uri: str) -> str:
        parsed = urllib.parse.urlparse(uri)
        path = Path(urllib.request.url2pathname(parsed.path))
        if parsed.scheme != "file" or not path.is_relative_to(self.root):
            raise PermanentError(f"{uri!r} is not a blob of {self.root}")
        key = path.relative_to(self.root).as_posix()
        self.path(key)  # the same rule as every key
        return key

    def list(self, prefix: str = "") -> list[str]:
        folder = prefix.rpartition("/")[0]  # the deepest folder the prefix names: walk only that
        start = self.path(folder) if folder else self.root
        if not start.is_dir():
            return []
        # Names starting with "." are uploads in progress (see upload).
        keys = (p.relative_to(self.root).as_posix() for p in start.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.rpartition("/")[2].startswith("."))

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
