"""The one rule for blob keys, shared by every BlobStore so a key valid in one is valid in all."""

from __future__ import annotations

import re

from ..errors import PermanentError

_KEY_PART = re.compile(r"^[A-Za-z0-9._-]+$")


def key_parts(key: str) -> list[str]:
    """The segments of ``key``, a relative POSIX path of plain names: no ``..``, no ``.``, no empty
    segment (so no leading, trailing or doubled ``/``). PermanentError otherwise."""
    parts = key.split("/")  # not PurePosixPath: it would quietly normalise "a//b" and "a/./b"
    if not key or any(p in (".", "..") or not _KEY_PART.match(p) for p in parts):
        raise PermanentError(f"invalid blob key {key!r}")
    return parts
