"""Structured logs that Cloud Logging understands: one JSON object a line with ``severity`` and
``message``, plus the context of the work at hand (jobId, userId, step, attempt), carried in a
context variable so every line inside ``log_context`` gets it without passing it around."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

_context: ContextVar[dict[str, Any]] = ContextVar("longform_log_context", default={})  # noqa: B039
_SEVERITY = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "INFO": "INFO", "DEBUG": "DEBUG"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values skipped) to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "logger": record.name,
            **_context.get(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_json_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> None:
    """Route every logger to one JSON-lines handler (idempotent: safe on each cold start)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def fields(**values: Any) -> dict[str, Any]:
    """``log.info("…", extra=fields(step=…))`` adds fields to one line only."""
    return {"fields": values}
