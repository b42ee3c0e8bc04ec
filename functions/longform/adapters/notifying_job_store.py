"""A JobStore that tells a listener about every write: the local twin of Firestore's onSnapshot.

Polling would miss a state that lasts less than one poll (a local stitch takes milliseconds);
a listener sees each one, so the CLI and the local web page show every status the job passes.
Writes and their notices are serialized here, so a listener hears the writes in the order they
were made even when segments are written from several threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..budget import SpendLimits, Usage
from ..job import Job
from ..ports import JobStore


class NotifyingJobStore:
    def __init__(self, inner: JobStore, listener: Callable[[Job], None]) -> None:
        self.inner = inner
        self.listener = listener
        self._lock = threading.Lock()

    def create(self, job: Job) -> None:
        with self._lock:
            self.inner.create(job)
            self.listener(job)

    def submit(self, job: Job, max_active: int | None = None, limits: SpendLimits | None = None) -> tuple[Job, bool]:
        with self._lock:
            stored, created = self.inner.submit(job, max_active, limits)
            if created:
                self.listener(stored)
        return stored, created

    def get(self, job_id: str) -> Job:
        return self.inner.get(job_id)

    def update(self, job_id: str, change: Callable[[Job], None], limits: SpendLimits | None = None) -> Job:
        with self._lock:
            job = self.inner.update(job_id, change, limits)
            self.listener(job)
        return job

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Job]:
        return self.inner.list(user_id, limit)

    def finished_before(self, created_before: str, holding: str = "scenes", limit: int = 100) -> Sequence[Job]:
        return self.inner.finished_before(created_before, holding, limit)

    def delete(self, job_id: str) -> None:
        self.inner.delete(job_id)

    def stale(self, status: str, updated_before: str, limit: int = 100) -> Sequence[Job]:
        return self.inner.stale(status, updated_before, limit)

    def usage(self, user_id: str, day: str) -> Usage:
        return self.inner.usage(user_id, day)

    def ids_starting_with(self, prefix: str, user_id: str, limit: int = 2) -> Sequence[str]:
        return self.inner.ids_starting_with(prefix, user_id, limit)
