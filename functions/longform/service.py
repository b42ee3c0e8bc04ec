"""The use cases, written once: every transport (the callables, the local server, the CLI) calls
these and maps the errors they raise to its own codes (``callable_protocol`` for the first two).

``JobService`` knows who is calling (``Caller``, or None when nobody signed in), checks the
request, keeps the job rules through the JobStore and starts or stops runs through an Engine:
Inngest in the cloud, the local runner in threads on a laptop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .budget import SpendLimits, utc_day
from .errors import InvalidRequest, JobNotFound, JobNotQueued, PermissionDenied, Unauthenticated
from .job import Job, Reservation, Status, idempotent_job_id, is_job_id, new_job_id
from .logs import log_context
from .ports import Engine, JobStore
from .request import Limits, validate_request

log = logging.getLogger(__name__)
MIN_ID_PREFIX = 4  # as git: shorter prefixes are refused, not guessed
RECENT_JOBS = 20


@dataclass(frozen=True)
class Caller:
    """Who is calling: a signed-in user, and whether the account is anonymous (a Firebase Auth
    anonymous sign-in: a fresh one costs nothing, so it cannot be what bounds spending)."""

    user_id: str
    anonymous: bool = False
    seconds_per_day: int | None = None  # the user's own daily budget (a custom claim), if any


class JobService:
    def __init__(
        self,
        jobs: JobStore,
        engine: Engine,
        limits: Limits | None = None,
        max_active_jobs: int | None = None,
        allow_anonymous: bool = False,
        budget: SpendLimits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``budget``: video seconds a day per user (unless the caller has its own) and for the
        project; None for no budget at all."""
        self.jobs = jobs
        self.engine = engine
        self.limits = limits or Limits()
        self.max_active_jobs = max_active_jobs
        self.allow_anonymous = allow_anonymous
        self.budget = budget
        self.clock = clock

    def trigger(self, caller: Caller | None, data: Any) -> dict[str, str]:
        """Validate, store the job as queued, start its run. The same user and ``requestId`` get
        the same job back (its id is derived from both) and nothing is started twice."""
        user = _signed_in(caller)
        if user.anonymous and not self.allow_anonymous:
            raise PermissionDenied("sign in with an account to make videos: anonymous accounts may not start jobs")
        with log_context(userId=user.user_id):
            request = validate_request(data, self.limits)
            job_id = idempotent_job_id(user.user_id, request.request_id) if request.request_id else new_job_id()
            job = Job.new(request, user.user_id, job_id)
            job.budget = Reservation(day=utc_day(self.clock()), seconds=request.duration_seconds)
            job, created = self.jobs.submit(job, self.max_active_jobs, self._limits_for(user))
            with log_context(jobId=job.job_id):
                if not created:
                    log.info("request %s already made job %s", request.request_id, job.job_id)
                    return _ref(job)
                try:
                    self.engine.start(job)
                except Exception as exc:
                    # Nothing would ever run a queued job whose start was lost: say so on the job.
                    reason = f"could not queue the job: {exc}"
                    self.jobs.update(job_id, lambda j: j.fail(reason, "enqueue"))
                    log.error("job not queued: %s", exc)
                    raise JobNotQueued(job_id, str(exc)) from exc
                log.info("job queued: %d scene(s) × %ds", len(request.prompts), request.segment_seconds)
                return _ref(job)

    def cancel(self, caller: Caller | None, data: Any) -> dict[str, str]:
        """Mark the caller's job cancelled (no further scene starts) and tell its engine."""
        user = _signed_in(caller)
        job_id = data.get("jobId") if isinstance(data, dict) else None
        if not is_job_id(job_id):
            raise InvalidRequest("jobId", "must be a job id")
        with log_context(userId=user.user_id, jobId=job_id):
            job = self._owned(user, job_id, "cancel")
            if job.status.is_final:
                return _ref(job)
            job = self.jobs.update(job_id, _cancel)
            try:
                self.engine.cancel(job)
            except Exception as exc:  # the job is cancelled already; the run stops at its next step
                log.warning("the engine was not told of the cancel: %s", exc)
            log.info("job cancelled")
            return _ref(job)

    def resume(self, caller: Caller | None, job_id: str) -> Job:
        """Run an unfinished job again from where it stopped (finished steps are not redone)."""
        job = self.job(caller, job_id)
        if not job.status.is_final:
            self.engine.start(job)
        return job

    def job(self, caller: Caller | None, job_id: str) -> Job:
        """The caller's job, by its id."""
        return self._owned(_signed_in(caller), job_id, "see")

    def find(self, caller: Caller | None, ref: str) -> Job:
        """The caller's job by its id or a unique prefix of it (at least 4 characters)."""
        user = _signed_in(caller)
        try:
            return self._owned(user, ref, "see")
        except JobNotFound:
            if len(ref) < MIN_ID_PREFIX or not is_job_id(ref):
                raise
        mine = list(self.jobs.ids_starting_with(ref, user.user_id, limit=2))
        if len(mine) > 1:
            raise InvalidRequest("jobId", f"{ref!r} names more than one job; give more characters")
        if not mine:
            raise JobNotFound(ref)
        return self._owned(user, mine[0], "see")

    def recent(self, caller: Caller | None, limit: int = RECENT_JOBS) -> list[Job]:
        """The caller's jobs, newest first."""
        return self.jobs.list(_signed_in(caller).user_id, limit)

    def usage(self, caller: Caller | None) -> dict[str, Any]:
        """The caller's video seconds today: used (reserved by jobs, less what they gave back),
        the daily limit and what is left (no limit: ``None``)."""
        user = _signed_in(caller)
        today = self.jobs.usage(user.user_id, utc_day(self.clock()))
        limits = self._limits_for(user)
        limit = limits.user_seconds if limits else None
        left = today.left(limit) if limit is not None else None
        return {"day": today.day, "usedSeconds": today.seconds, "limitSeconds": limit, "leftSeconds": left}

    def _limits_for(self, user: Caller) -> SpendLimits | None:
        if self.budget is None:
            return None
        if user.seconds_per_day is None:
            return self.budget
        return SpendLimits(user.seconds_per_day, self.budget.project_seconds)

    def _owned(self, user: Caller, job_id: str, doing: str) -> Job:
        job = self.jobs.get(job_id)
        if job.user_id != user.user_id:
            raise PermissionDenied(f"only the job's owner can {doing} it")
        return job


def _signed_in(caller: Caller | None) -> Caller:
    if caller is None or not caller.user_id:
        raise Unauthenticated("sign in to make videos")
    return caller


def _ref(job: Job) -> dict[str, str]:
    return {"jobId": job.job_id, "status": job.status.value}


def _cancel(job: Job) -> None:
    if not job.status.is_final:
        job.move_to(Status.CANCELLED)
