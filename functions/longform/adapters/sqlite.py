"""One SQLite file for the embedded job store and the local runner's step memo."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id     TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user_id, created_at DESC);
CREATE TABLE IF NOT EXISTS usage (
    owner            TEXT NOT NULL,    -- a user id, or 'project'
    day              TEXT NOT NULL,    -- YYYY-MM-DD, UTC
    seconds          INTEGER NOT NULL DEFAULT 0,
    returned_seconds INTEGER NOT NULL DEFAULT 0,
    jobs             INTEGER NOT NULL DEFAULT 0,
    limit_seconds    INTEGER,
    PRIMARY KEY (owner, day)
);
CREATE TABLE IF NOT EXISTS steps (
    job_id  TEXT NOT NULL,
    step_id TEXT NOT NULL,
    result  TEXT NOT NULL,
    PRIMARY KEY (job_id, step_id)
);
"""

# Columns added since the first schema: a data dir made by an earlier version gets them on open.
_USAGE_COLUMNS = {
    "generated_seconds": "INTEGER NOT NULL DEFAULT 0",
    "spent_usd": "REAL NOT NULL DEFAULT 0",
    "completed": "INTEGER NOT NULL DEFAULT 0",
    "failed": "INTEGER NOT NULL DEFAULT 0",
    "cancelled": "INTEGER NOT NULL DEFAULT 0",
    "quota_hits": "INTEGER NOT NULL DEFAULT 0",
}


class Database:
    """A connection per use, so threads never share one; WAL lets readers run beside a writer,
    and ``BEGIN IMMEDIATE`` serialises writers (threads and processes alike)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._init_lock = threading.Lock()

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        # NORMAL in WAL mode: a killed process loses nothing committed; only a power cut may
        # drop the last steps, and those are simply redone on resume.
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            if not self._ready:
                with self._init_lock:
                    if not self._ready:
                        _initialise(conn)
                        self._ready = True
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()


def _initialise(conn: sqlite3.Connection) -> None:
    """WAL and the schema. Switching to WAL answers "database is locked" at once, without
    waiting, while another connection (another process) holds the file: try again for a while."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            _add_columns(conn)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _add_columns(conn: sqlite3.Connection) -> None:
    """In one write transaction: two processes opening a new data dir at once must not both see a
    column missing and both add it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
        for name, kind in _USAGE_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE usage ADD COLUMN {name} {kind}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
