"""Jobs in Cloud Firestore: the cloud JobStore. One document ``videoJobs/{jobId}`` per job,
holding ``Job.to_json()`` (camelCase, the names the web client reads).

``submit`` is one transaction: the user's unfinished jobs are counted by a query inside it, and no
precondition could guard a query. ``update`` reads one document and writes it back on condition that
it is unchanged since the read (an ``update_time`` precondition), retrying when another writer came
first: the same isolation for a single document, but no lock held between round trips. Transactions
lock pessimistically, and the emulator breaks read-lock deadlocks only by a 2 s lock timeout (no
wound-wait): eight threads updating one job in transactions managed 24 updates in 56 s. Both retry
contention themselves with jittered backoff: the client's transaction retry re-runs at once (so the
same transactions deadlock again in step) and does not retry a read that lost its lock.

Errors, mapped at this boundary (ports.py: adapters never raise vendor exceptions):
    Aborted, DeadlineExceeded, InternalServerError, ServiceUnavailable, TooManyRequests (429),
    RetryError (the client's own retries gave up), contention outlasting ``ATTEMPTS``
                                                     → TransientError: may pass, retry later
    every other Google API error (PermissionDenied, InvalidArgument, Unauthenticated,
    FailedPrecondition such as a missing index…)   → PermanentError: a deploy or configuration fault
An exception raised by ``update``'s ``change`` reaches the caller unchanged, and nothing is written.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from ..budget import PROJECT, SpendLimits, Usage, admit, admit_taken_back, ledger_change, reserved_by
from ..errors import JobNotFound, LongformError, PermanentError, TooManyActiveJobs, TransientError
from ..job import Job, Status, utc_now
from ..job_events import log_events

ATTEMPTS = 30  # tries at a contended update or submit before giving up with TransientError
_UNFINISHED = [status.value for status in Status if not status.is_final]
_TRANSIENT = (
    gexc.Aborted,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ServiceUnavailable,
    gexc.TooManyRequests,
    gexc.RetryError,
)
# A conditional write that lost to another writer (Aborted: it met a transaction's lock): read again.
_CONFLICTS = (gexc.FailedPrecondition, gexc.Aborted)


class FirestoreJobStore:
    """Jobs in ``collection``; the budget ledger in ``{usage}/{userId}/days/{day}`` (clients read
    their own) and ``{project_usage}/{day}`` (the project's; no client reads it)."""

    def __init__(
        self,
        client: firestore.Client,
        collection: str = "videoJobs",
        usage: str = "usage",
        project_usage: str = "projectUsage",
    ) -> None:
        self.client = client
        self.jobs = client.collection(collection)
        self._usage = client.collection(usage)
        self._project_usage = client.collection(project_usage)

    def create(self, job: Job) -> None:
        with _mapped_errors():
            try:
                self.jobs.document(job.job_id).create(job.to_json())
            except gexc.AlreadyExists:
                raise LongformError(f"job {job.job_id!r} already exists") from None

    def submit(self, job: Job, max_active: int | None = None, limits: SpendLimits | None = None) -> tuple[Job, bool]:
        ref = self.jobs.document(job.job_id)

        @firestore.transactional
        def submit_once(transaction: firestore.Transaction) -> tuple[Job, bool]:
            existing = ref.get(transaction=transaction)
            if existing.exists:
                return _job(existing), False
            if max_active is not None and self._count_unfinished(job.user_id, max_active, transaction) >= max_active:
                raise TooManyActiveJobs(job.user_id, max_active)
            if job.budget is not None:
                day, seconds = job.budget.day, job.budget.seconds
                ledgers = [self._ledger(owner, day) for owner in (job.user_id, PROJECT)]
                if limits is not None:  # both read in the transaction: concurrent submits serialize on them
                    user, project = (_usage(ref.get(transaction=transaction), day) for ref in ledgers)
                    admit(limits, seconds, user, project)
                for ledger in ledgers:
                    transaction.set(ledger, _increments(day, seconds=seconds, jobs=1), merge=True)
                if limits is not None:  # for the page: "used / left today"
                    transaction.set(ledgers[0], {"limitSeconds": limits.user_seconds}, merge=True)
            transaction.create(ref, job.to_json())
            return job, True

        for attempt in range(ATTEMPTS):
            with _mapped_errors():
                try:
                    outcome: tuple[Job, bool] = submit_once(self.client.transaction(max_attempts=1))
                    return outcome
                except (gexc.Aborted, ValueError) as exc:
                    if not _lost_a_lock(exc):
                        raise
            _backoff(attempt)
        raise TransientError(f"submitting job {job.job_id}: still contended after {ATTEMPTS} attempts")

    def get(self, job_id: str) -> Job:
        with _mapped_errors():
            return _job(self.jobs.document(job_id).get())

    def update(self, job_id: str, change: Callable[[Job], None], limits: SpendLimits | None = None) -> Job:
        if limits is not None:
            return self._update_within(job_id, change, limits)
        ref = self.jobs.document(job_id)
        for attempt in range(ATTEMPTS):
            with _mapped_errors():
                snapshot = ref.get()
            job = _job(snapshot)
            before = job.to_json()
            change(job)  # may raise: nothing is written and the exception reaches the caller as is
            if job.to_json() == before:
                return job  # no write: every write re-fires the functions' document triggers
            job.updated_at = utc_now()
            after = job.to_json()
            # One batch: the job, on condition it is unchanged since the read, and what the change
            # books on the ledger (seconds given back, spent, how it ended), so each is booked
            # exactly once, with the write that made it.
            batch = self.client.batch()
            batch.update(ref, after, option=self.client.write_option(last_update_time=snapshot.update_time))
            booked = ledger_change(Job.from_json(before), job)
            if booked and job.budget is not None:
                for owner in (job.user_id, PROJECT):
                    batch.set(self._ledger(owner, job.budget.day), _increments(job.budget.day, **booked), merge=True)
            if _committed(batch.commit):
                log_events(Job.from_json(before), job)
                return job
            _backoff(attempt)
        raise TransientError(f"updating job {job_id}: still contended after {ATTEMPTS} attempts")

    def _update_within(self, job_id: str, change: Callable[[Job], None], limits: SpendLimits) -> Job:
        """``update`` for a change that may take seconds back into the budget: one transaction that
        reads the job and its day's ledgers, so the check and the booking cannot race."""
        ref = self.jobs.document(job_id)

        read: list[Job] = []  # the job as the committed attempt read it, for log_events

        @firestore.transactional
        def once(transaction: firestore.Transaction) -> Job:
            job = _job(ref.get(transaction=transaction))
            before = job.model_copy(deep=True)
            read.append(before)
            change(job)
            booked = ledger_change(before, job)
            if job.budget is not None and booked:
                day = job.budget.day
                ledgers = [self._ledger(owner, day) for owner in (job.user_id, PROJECT)]
                if reserved_by(before, job) > 0:  # seconds taken (a resume, an edit): they must fit the day's budget
                    user, project = (_usage(ledger.get(transaction=transaction), day) for ledger in ledgers)
                    admit_taken_back(limits, before, job, user, project)
                for ledger in ledgers:
                    transaction.set(ledger, _increments(day, **booked), merge=True)
            if job.to_json() != before.to_json():
                job.updated_at = utc_now()
                transaction.set(ref, job.to_json())
            return job

        for attempt in range(ATTEMPTS):
            with _mapped_errors():
                try:
                    job: Job = once(self.client.transaction(max_attempts=1))
                    log_events(read[-1], job)
                    return job
                except (gexc.Aborted, ValueError) as exc:
                    if not _lost_a_lock(exc):
                        raise
            _backoff(attempt)
        raise TransientError(f"updating job {job_id}: still contended after {ATTEMPTS} attempts")

    def usage(self, user_id: str, day: str) -> Usage:
        with _mapped_errors():
            return _usage(self._ledger(user_id, day).get(), day)

    def _ledger(self, owner: str, day: str) -> firestore.DocumentReference:
        if owner == PROJECT:
            return self._project_usage.document(day)
        days: firestore.CollectionReference = self._usage.document(owner).collection("days")
        return days.document(day)

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Job]:
        # Ties broken by the jobId field (equal to the document id), as the SQLite store does;
        # ordering by __name__ instead would make the index depend on Firestore's implicit order.
        query = (
            self.jobs.order_by("timings.createdAt", direction=firestore.Query.DESCENDING).order_by("jobId").limit(limit)
        )
        if user_id is not None:
            query = query.where(filter=firestore.FieldFilter("userId", "==", user_id))
        with _mapped_errors():
            return [_job(snapshot) for snapshot in query.stream()]

    def finished_before(self, created_before: str, holding: str = "scenes", limit: int = 100) -> Sequence[Job]:
        statuses = [Status.COMPLETED.value] if holding == "video" else [s.value for s in Status if s.is_final]
        removed = "videoRemovedAt" if holding == "video" else "sceneMediaRemovedAt"
        query = (
            self.jobs.where(filter=firestore.FieldFilter("status", "in", statuses))
            .where(filter=firestore.FieldFilter(removed, "==", None))
            .where(filter=firestore.FieldFilter("timings.createdAt", "<", created_before))
            .order_by("timings.createdAt")
            .limit(limit)
        )
        with _mapped_errors():
            return [_job(snapshot) for snapshot in query.stream()]

    def stale(self, status: str, updated_before: str, limit: int = 100) -> Sequence[Job]:
        query = (
            self.jobs.where(filter=firestore.FieldFilter("status", "==", status))
            .where(filter=firestore.FieldFilter("updatedAt", "<", updated_before))
            .order_by("updatedAt")
            .limit(limit)
        )
        with _mapped_errors():
            return [_job(snapshot) for snapshot in query.stream()]

    def with_stitch_job(self, name: str) -> Job | None:
        """The job whose stitch is ``name`` (its ``stitchJob``: a Transcoder job), or None. Only
        this store is asked: Transcoder jobs, and the Pub/Sub notices about them, are the cloud's."""
        query = self.jobs.where(filter=firestore.FieldFilter("stitchJob", "==", name)).limit(1)
        with _mapped_errors():
            found = [_job(snapshot) for snapshot in query.stream()]
        return found[0] if found else None

    def delete(self, job_id: str) -> None:
        with _mapped_errors():
            self.jobs.document(job_id).delete()

    def ids_starting_with(self, prefix: str, user_id: str, limit: int = 2) -> Sequence[str]:
        # jobId equals the document id; the range covers every string that starts with the prefix.
        query = (
            self.jobs.where(filter=firestore.FieldFilter("userId", "==", user_id))
            .where(filter=firestore.FieldFilter("jobId", ">=", prefix))
            .where(filter=firestore.FieldFilter("jobId", "<", prefix + "\uf8ff"))
            .order_by("jobId")
            .limit(limit)
            .select(["jobId"])
        )
        with _mapped_errors():
            return [snapshot.id for snapshot in query.stream()]

    def _count_unfinished(self, user_id: str, up_to: int, transaction: firestore.Transaction) -> int:
        query = (
            self.jobs.where(filter=firestore.FieldFilter("userId", "==", user_id))
            .where(filter=firestore.FieldFilter("status", "in", _UNFINISHED))
            .limit(up_to)
            .select(["status"])
        )
        return sum(1 for _ in query.stream(transaction=transaction))


def _usage(snapshot: firestore.DocumentSnapshot[Any], day: str) -> Usage:
    return Usage.model_validate({"day": day, **(snapshot.to_dict() or {})})


def _increments(day: str, **fields: int | float) -> dict[str, Any]:
    """Fields added to atomically, on a ledger document made if missing (``set(..., merge=True)``)."""
    return {
        "day": day,
        **{Usage.model_fields[name].alias or name: firestore.Increment(n) for name, n in fields.items()},
    }


def _job(snapshot: firestore.DocumentSnapshot[Any]) -> Job:
    data: dict[str, Any] | None = snapshot.to_dict()
    if data is None:
        raise JobNotFound(snapshot.id)
    return Job.from_json(data)


def _committed(write: Callable[[], object]) -> bool:
    """Run a conditional write; False if another writer came first."""
    with _mapped_errors():
        try:
            write()
        except _CONFLICTS:
            return False
    return True


def _lost_a_lock(exc: Exception) -> bool:
    """Contention: a read that timed out on a lock, or an aborted commit (the client wraps that in a
    ValueError once its attempts are spent)."""
    return isinstance(exc, gexc.Aborted) or (isinstance(exc, ValueError) and isinstance(exc.__cause__, gexc.Aborted))


def _backoff(attempt: int) -> None:
    # Full jitter, so the writers that just lost do not collide again in step.
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except _TRANSIENT as exc:
        raise TransientError(f"Firestore: {exc}") from exc
    except gexc.GoogleAPIError as exc:
        raise PermanentError(f"Firestore: {exc}") from exc
