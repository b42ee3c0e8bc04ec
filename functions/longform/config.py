"""Settings, read from the environment once, with defaults that run offline."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import InvalidRequest


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".longform")
    concurrency: int = 4  # segments generated at once when chain=false
    retry_attempts: int = 5  # tries per step, the first included
    retry_base_seconds: float = 1.0  # first backoff; doubles per attempt, with jitter
    retry_max_seconds: float = 60.0
    poll_seconds: float = 10.0  # between polls of a long-running model or stitch operation
    max_polls: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        s = cls()
        values = {
            "data_dir": Path(env["LONGFORM_DATA_DIR"]) if env.get("LONGFORM_DATA_DIR") else s.data_dir,
            "concurrency": _number(env, "LONGFORM_CONCURRENCY", s.concurrency, int),
            "retry_attempts": _number(env, "LONGFORM_RETRY_ATTEMPTS", s.retry_attempts, int),
            "retry_base_seconds": _number(env, "LONGFORM_RETRY_BASE_SECONDS", s.retry_base_seconds, float),
            "poll_seconds": _number(env, "LONGFORM_POLL_SECONDS", s.poll_seconds, float),
        }
        return s.with_(**values)

    def with_(self, **changes: object) -> Settings:
        new = replace(self, **changes)  # type: ignore[arg-type]
        if new.concurrency < 1:
            raise InvalidRequest("concurrency", "must be at least 1")
        if new.retry_attempts < 1:
            raise InvalidRequest("retryAttempts", "must be at least 1")
        if new.retry_base_seconds < 0:
            raise InvalidRequest("retryBaseSeconds", "must not be negative")
        return new

    @property
    def db_path(self) -> Path:
        return self.data_dir / "longform.db"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> object:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidRequest(name, f"must be a number, got {raw!r}") from None
