"""Jobs in a SQLite file: the embedded JobStore."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from ..errors import JobNotFound, LongformError, TooManyActiveJobs
from ..job import FINAL_STATUSES, Job
from .sqlite import Database


class SqliteJobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, job: Job) -> None:
        try:
            with self.db.connect(write=True) as conn:
                _insert(conn, job)
        except sqlite3.IntegrityError:
            raise LongformError(f"job {job.job_id!r} already exists") from None

    def submit(self, job: Job, max_active: int | None = None) -> tuple[Job, bool]:
        with self.db.connect(write=True) as conn:
            row = conn.execute("SELECT data FROM jobs WHERE job_id = ?", (job.job_id,)).fetchone()
            if row is not None:
                return Job.from_json(json.loads(row[0])), False
            if max_active is not None:
                final = [status.value for status in FINAL_STATUSES]
                (active,) = conn.execute(
                    f"SELECT COUNT(*) FROM jobs WHERE user_id = ? AND status NOT IN ({', '.join('?' * len(final))})",
                    (job.user_id, *final),
                ).fetchone()
                if active >= max_active:
                    raise TooManyActiveJobs(job.user_id, max_active)
            _insert(conn, job)
            return job, True

    def get(self, job_id: str) -> Job:
        with self.db.connect() as conn:
            return _read(conn, job_id)

    def update(self, job_id: str, change: Callable[[Job], None]) -> Job:
        with self.db.connect(write=True) as conn:
            job = _read(conn, job_id)
            change(job)
            conn.execute(
                "UPDATE jobs SET status = ?, data = ? WHERE job_id = ?",
                (job.status, json.dumps(job.to_json()), job_id),
            )
            return job

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Job]:
        query = "SELECT data FROM jobs"
        args: tuple[object, ...] = ()
        if user_id is not None:
            query += " WHERE user_id = ?"
            args = (user_id,)
        query += " ORDER BY created_at DESC, job_id LIMIT ?"
        with self.db.connect() as conn:
            return [Job.from_json(json.loads(row[0])) for row in conn.execute(query, (*args, limit))]

    def ids_starting_with(self, prefix: str, user_id: str, limit: int = 2) -> Sequence[str]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT job_id FROM jobs WHERE user_id = ? AND substr(job_id, 1, ?) = ? ORDER BY job_id LIMIT ?",
                (user_id, len(prefix), prefix, limit),
            )
            return [row[0] for row in rows]


def _insert(conn: sqlite3.Connection, job: Job) -> None:
    conn.execute(
        "INSERT INTO jobs (job_id, user_id, status, created_at, data) VALUES (?, ?, ?, ?, ?)",
        (job.job_id, job.user_id, job.status, job.timings["createdAt"], json.dumps(job.to_json())),
    )


def _read(conn: sqlite3.Connection, job_id: str) -> Job:
    row = conn.execute("SELECT data FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    return Job.from_json(json.loads(row[0]))
