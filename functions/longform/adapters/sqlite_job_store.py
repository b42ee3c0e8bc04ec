"""Jobs in a SQLite file: the embedded JobStore."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from ..budget import PROJECT, SpendLimits, Usage, admit, admit_taken_back, ledger_change
from ..errors import JobNotFound, LongformError, TooManyActiveJobs
from ..job import FINAL_STATUSES, Job, utc_now
from ..job_events import log_events
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

    def submit(self, job: Job, max_active: int | None = None, limits: SpendLimits | None = None) -> tuple[Job, bool]:
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
            if job.budget is not None:
                day, seconds = job.budget.day, job.budget.seconds
                if limits is not None:
                    admit(limits, seconds, _usage(conn, job.user_id, day), _usage(conn, PROJECT, day))
                for owner in (job.user_id, PROJECT):
                    _add(conn, owner, day, seconds=seconds, jobs=1)
                if limits is not None:
                    conn.execute(
                        "UPDATE usage SET limit_seconds = ? WHERE owner = ? AND day = ?",
                        (limits.user_seconds, job.user_id, day),
                    )
            _insert(conn, job)
            return job, True

    def get(self, job_id: str) -> Job:
        with self.db.connect() as conn:
            return _read(conn, job_id)

    def update(self, job_id: str, change: Callable[[Job], None], limits: SpendLimits | None = None) -> Job:
        with self.db.connect(write=True) as conn:
            job = _read(conn, job_id)
            before = job.model_copy(deep=True)
            change(job)
            if job != before:
                job.updated_at = utc_now()
            if limits is not None and job.budget is not None:
                day = job.budget.day
                admit_taken_back(limits, before, job, _usage(conn, job.user_id, day), _usage(conn, PROJECT, day))
            conn.execute(
                "UPDATE jobs SET status = ?, data = ? WHERE job_id = ?",
                (job.status, json.dumps(job.to_json()), job_id),
            )
            booked = ledger_change(before, job)
            if booked and job.budget is not None:
                for owner in (job.user_id, PROJECT):
                    _add(conn, owner, job.budget.day, **booked)
        log_events(before, job)
        return job

    def usage(self, user_id: str, day: str) -> Usage:
        with self.db.connect() as conn:
            return _usage(conn, user_id, day)

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Job]:
        query = "SELECT data FROM jobs"
        args: tuple[object, ...] = ()
        if user_id is not None:
            query += " WHERE user_id = ?"
            args = (user_id,)
        query += " ORDER BY created_at DESC, job_id LIMIT ?"
        with self.db.connect() as conn:
            return [Job.from_json(json.loads(row[0])) for row in conn.execute(query, (*args, limit))]

    def finished_before(self, created_before: str, holding: str = "scenes", limit: int = 100) -> Sequence[Job]:
        statuses = ("completed",) if holding == "video" else tuple(status.value for status in FINAL_STATUSES)
        field = _HOLDING[holding]
        query = (
            f"SELECT data FROM jobs WHERE status IN ({', '.join('?' * len(statuses))}) AND created_at < ?"
            f" AND json_extract(data, '$.{field}') IS NULL ORDER BY created_at, job_id LIMIT ?"
        )
        with self.db.connect() as conn:
            rows = conn.execute(query, (*statuses, created_before, limit))
            return [Job.from_json(json.loads(row[0])) for row in rows]

    def stale(self, status: str, updated_before: str, limit: int = 100) -> Sequence[Job]:
        query = (
            "SELECT data FROM jobs WHERE status = ? AND COALESCE(json_extract(data, '$.updatedAt'), created_at) < ?"
            " ORDER BY created_at, job_id LIMIT ?"
        )
        with self.db.connect() as conn:
            return [Job.from_json(json.loads(row[0])) for row in conn.execute(query, (status, updated_before, limit))]

    def delete(self, job_id: str) -> None:
        with self.db.connect(write=True) as conn:
            conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM steps WHERE job_id = ?", (job_id,))

    def ids_starting_with(self, prefix: str, user_id: str, limit: int = 2) -> Sequence[str]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT job_id FROM jobs WHERE user_id = ? AND substr(job_id, 1, ?) = ? ORDER BY job_id LIMIT ?",
                (user_id, len(prefix), prefix, limit),
            )
            return [row[0] for row in rows]


_HOLDING = {"scenes": "sceneMediaRemovedAt", "video": "videoRemovedAt"}


_COUNTS = [name for name in Usage.model_fields if name not in ("day", "limit_seconds")]  # the columns added to


def _usage(conn: sqlite3.Connection, owner: str, day: str) -> Usage:
    row = conn.execute(
        f"SELECT limit_seconds, {', '.join(_COUNTS)} FROM usage WHERE owner = ? AND day = ?", (owner, day)
    ).fetchone()
    if row is None:
        return Usage(day=day)
    return Usage(day=day, limit_seconds=row[0], **dict(zip(_COUNTS, row[1:], strict=True)))


def _add(conn: sqlite3.Connection, owner: str, day: str, **counts: int | float) -> None:
    """Add ``counts`` (Usage fields) to the owner's day, making the row if missing."""
    names = [name for name in _COUNTS if name in counts]
    conn.execute(
        f"INSERT INTO usage (owner, day, {', '.join(names)}) VALUES (?, ?{', ?' * len(names)})"
        f" ON CONFLICT (owner, day) DO UPDATE SET {', '.join(f'{n} = {n} + excluded.{n}' for n in names)}",
        (owner, day, *(counts[name] for name in names)),
    )


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
