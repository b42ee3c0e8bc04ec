"""The local driver: runs the workflow in this process, memoizing each step in SQLite.

A step's result is written once it succeeds; a run started again (``longform resume``) replays
the workflow and gets finished steps from the memo, so a job killed at any point continues where
it stopped. TransientError is retried with exponential backoff and jitter; anything else fails
the step at once.
"""

from __future__ import annotations

import contextvars
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from .adapters.sqlite import Database
from .errors import JobCancelled, StepFailed, TransientError
from .job import Job, iso_time
from .logs import log_context
from .processes import gone, this_process
from .workflow import Pipeline, fail_job, run_job

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 10
    base_seconds: float = 1.0
    max_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Backoff before try ``attempt + 1``: base·2^(attempt−1), ±50 % jitter, capped;
        never sooner than the service asked for."""
        backoff = min(self.max_seconds, self.base_seconds * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        return max(backoff, retry_after or 0.0)


_RUN = "~run"  # a memo entry that is no step: the run (Job.run_key) the memo holds the steps of
_RESUMES = "~resumes"  # what it was before edits: the number of resumes of that run


class SqliteSteps:
    """``Steps`` for one job, memoized in the ``steps`` table."""

    def __init__(
        self,
        db: Database,
        job_id: str,
        retry: RetryPolicy,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.job_id = job_id
        self.retry = retry
        self.concurrency = concurrency
        self._sleep = sleep
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def run(self, step_id: str, fn: Callable[[], T]) -> T:
        self._claim(step_id)
        found, result = self._recall(step_id)
        if found:
            return result  # type: ignore[no-any-return]
        for attempt in range(1, self.retry.attempts + 1):
            try:
                with log_context(step=step_id, attempt=attempt):
                    result = fn()
            except JobCancelled:
                raise
            except TransientError as exc:
                if attempt == self.retry.attempts:
                    raise StepFailed(step_id, str(exc), attempt) from exc
                delay = self.retry.delay(attempt, exc.retry_after)
                log.warning("step %s attempt %d failed, retrying in %.2fs: %s", step_id, attempt, delay, exc)
                self._sleep(delay)
            except Exception as exc:
                raise StepFailed(step_id, str(exc) or type(exc).__name__, attempt) from exc
            else:
                self._remember(step_id, result)
                return result
        raise AssertionError("unreachable")  # the loop returns or raises

    def sleep(self, step_id: str, seconds: float) -> None:
        self.run(step_id, lambda: self._sleep(seconds))

    def parallel(self, branches: Sequence[Callable[[], T]]) -> list[T]:
        """Run the branches on a bounded pool. After the first failure no branch starts;
        running ones finish (their segments are kept); then the failure is raised."""
        failed = threading.Event()

        def guarded(branch: Callable[[], T]) -> T | None:
            if failed.is_set():
                return None
            try:
                return branch()
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="segment") as pool:
            # Each branch runs in a copy of this context, so its log lines keep the job's fields.
            futures = [pool.submit(contextvars.copy_context().run, guarded, branch) for branch in branches]
            wait(futures)
        for future in futures:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [future.result() for future in futures]  # type: ignore[misc]

    def forget_other_runs(self, job: Job) -> None:
        """A resumed or edited job runs again as a new run would, with an empty memo (as Inngest
        gives a new run a fresh step history): the workflow's start step lists the scenes made,
        whose files are checked and reused, so only a scene that failed, or whose file is gone or
        broken, or that the edit changed, is begun, counted and started again. Done once per run
        (a marker in the memo names the run its steps belong to)."""
        held = self._recall(_RUN)[1]
        if held is None:  # a memo written before the marker named runs: it counted resumes
            resumes = self._recall(_RESUMES)[1] or 0
            held = f"{job.job_id}-r{resumes}" if resumes else job.job_id
        if held == job.run_key:
            return
        with self.db.connect(write=True) as conn:
            conn.execute("DELETE FROM steps WHERE job_id = ?", (self.job_id,))
            conn.execute(
                "INSERT OR REPLACE INTO steps (job_id, step_id, result) VALUES (?, ?, ?)",
                (self.job_id, _RUN, json.dumps(job.run_key)),
            )

    def _claim(self, step_id: str) -> None:
        # Two steps with one id would share a memo entry: a workflow bug, caught here.
        with self._lock:
            if step_id in self._ids:
                raise ValueError(f"step id {step_id!r} used twice in one run")
            self._ids.add(step_id)

    def _recall(self, step_id: str) -> tuple[bool, Any]:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT result FROM steps WHERE job_id = ? AND step_id = ?", (self.job_id, step_id)
            ).fetchone()
        return (False, None) if row is None else (True, json.loads(row[0]))

    def _remember(self, step_id: str, result: Any) -> None:
        with self.db.connect(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO steps (job_id, step_id, result) VALUES (?, ?, ?)",
                (self.job_id, step_id, json.dumps(result)),
            )


class LocalRunner:
    """Runs (or resumes) a job to its end and leaves it in a truthful final status."""

    def __init__(
        self,
        pipeline: Pipeline,
        db: Database,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pipeline = pipeline
        self.db = db
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self._sleep = sleep

    def run(self, job_id: str) -> Job:
        job = self._retrying(partial(self.pipeline.jobs.get, job_id))
        if job.status.is_final:
            return job
        steps = SqliteSteps(self.db, job_id, self.retry, self.concurrency, self._sleep)
        steps.forget_other_runs(job)
        with log_context(jobId=job_id, userId=job.user_id):
            self._run(steps, job_id)
        return self._retrying(partial(self.pipeline.jobs.get, job_id))

    def _retrying(self, call: Callable[[], T]) -> T:
        """A store call of the runner's own, outside any step, retried as a step would be."""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except TransientError as exc:
                if attempt == self.retry.attempts:
                    raise
                self._sleep(self.retry.delay(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    def _run(self, steps: SqliteSteps, job_id: str) -> None:
        try:
            run_job(self.pipeline, steps, job_id)
        except JobCancelled:
            log.info("job %s was cancelled", job_id)
        except StepFailed as exc:
            log.error("job %s failed at step %s: %s", job_id, exc.step_id, exc.reason)
            self._retrying(partial(fail_job, self.pipeline.jobs, job_id, exc.reason, exc.step_id))
        except Exception as exc:  # outside any step: a poll limit, a bug
            log.exception("job %s failed", job_id)
            self._retrying(partial(fail_job, self.pipeline.jobs, job_id, str(exc) or type(exc).__name__, None))


class ThreadEngine:
    """The Engine of the embedded pipeline: jobs run (or resume) in this process, at most
    ``max_running`` at once; the others wait their turn in a queue. A job already waiting or
    running is not queued again. ``finished[jobId]`` is set when its run returns. A cancel needs
    no message: the run stops at its next write to the cancelled job.

    One runner per job, across processes: ``start`` takes the job's lease for this process
    (JobBusy if another live process holds it), a heartbeat renews the leases of every job waiting
    or running here every third of ``lease_seconds``, and a finished run gives its lease back. A
    killed process's jobs are free again, and show as interrupted, once their lease runs out."""

    def __init__(self, runner: LocalRunner, max_running: int = 2, lease_seconds: float = 30.0) -> None:
        self.runner = runner
        self.max_running = max_running
        self.lease_seconds = lease_seconds
        self.holder = this_process()
        self.finished: dict[str, threading.Event] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._active: set[str] = set()  # waiting or running
        self._again: set[str] = set()  # started again while active: to run once more
        self._workers: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None

    def start(self, job: Job) -> None:
        with self._lock:
            if job.job_id in self._active:
                # Its run may be ending just now, having read the job before this start (a new
                # version, say): it runs once more when it ends; a run of a job with nothing left
                # to do returns at once.
                self._again.add(job.job_id)
                return
            self._lease(job.job_id)  # JobBusy: another process runs it
            self._active.add(job.job_id)
            self.finished.setdefault(job.job_id, threading.Event()).clear()
            self._queue.put(job.job_id)
            if len(self._workers) < self.max_running:
                worker = threading.Thread(target=self._work, name=f"jobs-{len(self._workers)}", daemon=True)
                self._workers.append(worker)
                worker.start()
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="job-leases", daemon=True)
                self._heartbeat.start()

    def cancel(self, job: Job) -> None:
        pass

    @property
    def workers(self) -> int:
        """Threads running jobs: at most ``max_running``, however many jobs wait."""
        return len(self._workers)

    def _lease(self, job_id: str) -> None:
        until = iso_time(datetime.now(UTC) + timedelta(seconds=self.lease_seconds))
        self.runner.pipeline.jobs.update(job_id, lambda j: j.take_lease(self.holder, until, gone=gone))

    def _beat(self) -> None:
        while True:
            time.sleep(self.lease_seconds / 3)
            with self._lock:
                active = list(self._active)
            for job_id in active:
                try:
                    self._lease(job_id)
                except Exception as exc:  # the next beat tries again; the lease has time left
                    log.warning("job %s: lease not renewed: %s", job_id, exc)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                self.runner.run(job_id)
            except Exception:  # the runner leaves the job truthful; keep serving the queue
                log.exception("job %s: the run ended with an error", job_id)
            with self._lock:
                if job_id in self._again:
                    self._again.discard(job_id)
                    self._queue.put(job_id)
                    continue
                self._active.discard(job_id)
                try:
                    self.runner.pipeline.jobs.update(job_id, lambda j: j.release_lease(self.holder))
                except Exception as exc:  # it runs out by itself
                    log.warning("job %s: lease not given back: %s", job_id, exc)
            self.finished[job_id].set()
