"""The use cases, written once: every transport (the callables, the local server, the CLI) calls
these and maps the errors they raise to its own codes (``callable_protocol`` for the first two).

``JobService`` knows who is calling (``Caller``, or None when nobody signed in), checks the
request, keeps the job rules through the JobStore and starts or stops runs through an Engine:
Inngest in the cloud, the local runner in threads on a laptop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from .budget import SpendLimits, utc_day
from .edits import CONTINUITIES, identify, plans_for, validate_edit, version_segments
from .errors import (
    InvalidRequest,
    JobNotFound,
    JobNotQueued,
    NotEditable,
    NotResumable,
    PermissionDenied,
    Unauthenticated,
)
from .job import (
    Job,
    Reservation,
    SegmentStatus,
    Status,
    idempotent_job_id,
    is_job_id,
    iso_time,
    new_job_id,
)
from .logs import fields, log_context
from .ports import BlobStore, Engine, JobStore, job_prefix
from .prices import Pricing
from .request import Limits, validate_request

log = logging.getLogger(__name__)
MIN_ID_PREFIX = 4  # as git: shorter prefixes are refused, not guessed
RECENT_JOBS = 20
# How long a job may go without a write before the sweeper calls it stuck. A queued job waits for
# Inngest to start its run (seconds); a running one writes at every scene, and one scene's polls
# may last an hour at most (Settings.max_wait_seconds, in poll steps of POLL_BUDGET_SECONDS); a
# Transcoder stitch's poller writes every round.
STUCK_AFTER = {
    Status.QUEUED: timedelta(minutes=10),
    Status.GENERATING: timedelta(minutes=90),
    Status.STITCHING: timedelta(minutes=20),
}
MAX_REQUEUES = 3
# A job's document holds its versions' history; Firestore takes at most 1 MiB a document.
MAX_JOB_BYTES = 900_000


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
        pricing: Pricing | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        blobs: Callable[[], BlobStore] | None = None,
        link: Callable[[str], str | None] = lambda key: None,
        model: str = "preview",
    ) -> None:
        """``budget``: video seconds a day per user (unless the caller has its own) and for the
        project; None for no budget at all. ``pricing`` prices each job when it is asked for (its
        estimate, on the job and in the answer); None leaves jobs unpriced. ``blobs`` gives the job
        files' store (built when first needed: the trigger never needs it); ``link`` makes a
        short-lived URL to play a file; ``model`` names what generates scenes (the Veo model, or
        the preview renderer): part of each segment's identity, which edits reuse by."""
        self.jobs = jobs
        self.engine = engine
        self.limits = limits or Limits()
        self.max_active_jobs = max_active_jobs
        self.allow_anonymous = allow_anonymous
        self.budget = budget
        self.pricing = pricing
        self.clock = clock
        self._blobs = blobs
        self.link = link
        self.model = model

    def trigger(self, caller: Caller | None, data: Any) -> dict[str, Any]:
        """Validate, store the job as queued, start its run. The same user and ``requestId`` get
        the same job back (its id is derived from both) and nothing is started twice."""
        user = self._may_spend(caller)
        with log_context(userId=user.user_id):
            request = validate_request(data, self.limits)
            job_id = idempotent_job_id(user.user_id, request.request_id) if request.request_id else new_job_id()
            now = self.clock()
            job = Job.new(request, user.user_id, job_id, now=iso_time(now))
            identify(job, self.model)
            job.budget = Reservation(day=utc_day(now), seconds=request.duration_seconds)
            job.cost = self.pricing.estimate(request) if self.pricing else None
            job, created = self.jobs.submit(job, self.max_active_jobs, self._limits_for(user))
            with log_context(jobId=job.job_id):
                if not created:
                    log.info("request %s already made job %s", request.request_id, job.job_id)
                    return _priced(job)
                self._start_run(job)
                log.info(
                    "job queued: %d scene(s) × %ds, estimated $%.2f",
                    len(request.prompts),
                    request.segment_seconds,
                    job.cost.estimate_usd if job.cost else 0.0,
                    extra=fields(estimateUsd=job.cost.estimate_usd if job.cost else None),
                )
                return _priced(job)

    def edit(self, caller: Caller | None, data: Any) -> dict[str, Any]:
        """Make the next version of the caller's ended job (edits.py): only the scenes the edit
        changes (or whose first frame it changes, when asked to keep continuity) are generated;
        every other is reused. With ``dryRun``, only what each continuity choice would make and
        cost. The same ``requestId`` gets the version it made back."""
        user = self._may_spend(caller)
        edit = validate_edit(data)
        with log_context(userId=user.user_id, jobId=edit.job_id):
            job = self._owned(user, edit.job_id, "edit")
            done = _version_of(job, edit.request_id)
            if done is not None:
                log.info("request %s already made version %d", edit.request_id, done)
                return {"jobId": job.job_id, "status": job.status.value, "version": done}
            if not job.status.is_final:
                raise NotEditable(job.job_id, f"it is {job.status.value}; edit it once it has ended (or cancel it)")
            request = job.video_request
            scene_usd = self.pricing.scene_usd(request) if self.pricing else 0.0
            if edit.dry_run:
                plans = plans_for(job, edit, self.model, CONTINUITIES)
                answer = {c: plan.to_json(request.segment_seconds, scene_usd) for c, plan in plans.items()}
                return {"jobId": job.job_id, "version": job.version + 1, "plans": answer}
            plan = plans_for(job, edit, self.model, (edit.continuity,))[edit.continuity]
            new = request.model_copy(update={"prompts": [s.prompt for s in plan.scenes]})
            now = self.clock()
            segments = version_segments(plan, iso_time(now))
            budget = Reservation(day=utc_day(now), seconds=len(plan.generate) * request.segment_seconds)
            cost = self.pricing.estimate(new, generated=len(plan.generate)) if self.pricing else None
            expected = job.version

            def new_version(j: Job) -> None:
                if j.version != expected:
                    raise NotEditable(j.job_id, f"it was edited meanwhile (now version {j.version}); try again")
                identify(j, self.model)  # as planned: the version kept records what its scenes were
                j.new_version(
                    segments, new, plan.changes, plan.continuity, edit.request_id, budget, cost, now=iso_time(now)
                )
                if len(json.dumps(j.to_json())) > MAX_JOB_BYTES:
                    why = f"its {len(j.versions)} versions fill the job's record; start a new job from this version"
                    raise NotEditable(j.job_id, why)

            job = self.jobs.update(job.job_id, new_version, self._limits_for(user))
            self._start_run(job)
            log.info(
                "version %d: %d scene(s) to make, %d reused; %s",
                job.version,
                len(plan.generate),
                len(plan.reuse),
                "; ".join(plan.changes),
                extra=fields(version=job.version, estimateUsd=cost.estimate_usd if cost else None),
            )
            return _priced(job) | {
                "version": job.version,
                "plan": plan.to_json(request.segment_seconds, scene_usd),
            }

    def _may_spend(self, caller: Caller | None) -> Caller:
        user = _signed_in(caller)
        if user.anonymous and not self.allow_anonymous:
            raise PermissionDenied("sign in with an account to make videos: anonymous accounts may not start jobs")
        return user

    def _start_run(self, job: Job) -> None:
        try:
            self.engine.start(job)
        except Exception as exc:
            # Nothing would ever run a queued job whose start was lost: say so on the job.
            reason = f"could not queue the job: {exc}"
            self.jobs.update(job.job_id, lambda j: j.fail(reason, "enqueue"))
            log.error("job not queued: %s", exc)
            raise JobNotQueued(job.job_id, str(exc)) from exc

    def cancel(self, caller: Caller | None, data: Any) -> dict[str, str]:
        """Mark the caller's job cancelled (no further scene starts) and tell its engine."""
        user = _signed_in(caller)
        job_id = _job_id(data)
        with log_context(userId=user.user_id, jobId=job_id):
            return _ref(self._stop(self._owned(user, job_id, "cancel")))

    def playback(self, caller: Caller | None, data: Any) -> dict[str, Any]:
        """Fresh short-lived links to play the caller's job: the final video once it is made, and
        each scene made so far while its media is kept (None where there is nothing to play); of
        the current version, or of an earlier one (``version``)."""
        user = _signed_in(caller)
        job = self._owned(user, _job_id(data), "play")
        blobs = self.blobs()
        number = _version(data, job)

        def link(uri: str | None) -> str | None:
            return self.link(blobs.key_of(uri)) if uri else None

        if number == job.version:
            video = link(job.video_uri) if job.status is Status.COMPLETED else None
            kept = job.scene_media_removed_at is None
            made = [s.uri if kept and s.status is SegmentStatus.COMPLETED else None for s in job.segments]
        else:
            earlier = next(v for v in job.versions if v.number == number)
            video = link(earlier.video_uri) if earlier.status is Status.COMPLETED else None
            made = [scene.uri for scene in earlier.scenes]
        scenes = [{"index": i, "url": link(uri)} for i, uri in enumerate(made)]
        return {"jobId": job.job_id, "version": number, "videoUrl": video, "segments": scenes}

    def delete(self, caller: Caller | None, data: Any) -> dict[str, Any]:
        """Delete the caller's job: cancelled first if it runs, then its files, then its document.
        What it spent stays spent."""
        user = _signed_in(caller)
        job_id = _job_id(data)
        with log_context(userId=user.user_id, jobId=job_id):
            self._stop(self._owned(user, job_id, "delete"))
            blobs = self.blobs()
            for key in blobs.list(job_prefix(job_id)):
                blobs.delete(key)
            self.jobs.delete(job_id)
            log.info("job deleted")
            return {"jobId": job_id, "deleted": True}

    def remove_old_media(self, scene_days: int, video_days: int = 0) -> dict[str, int]:
        """Retention: delete the segments and frames of jobs finished ``scene_days`` ago and, when
        ``video_days`` is set, their final videos too; each job records what was removed."""
        now = self.clock()
        removed = {"scenes": self._remove(now, scene_days, "scenes")}
        removed["videos"] = self._remove(now, video_days, "video") if video_days else 0
        log.info("retention: the scenes of %(scenes)d job(s), %(videos)d final video(s) removed", removed)
        return removed

    def _remove(self, now: datetime, days: int, holding: str) -> int:
        blobs, count = self.blobs(), 0
        parts, mark = (
            (("final",), Job.remove_video) if holding == "video" else (("segments", "frames"), Job.remove_scene_media)
        )
        while batch := self.jobs.finished_before(iso_time(now - timedelta(days=days)), holding):
            for job in batch:
                for key in (key for part in parts for key in blobs.list(job_prefix(job.job_id, part))):
                    blobs.delete(key)
                self.jobs.update(job.job_id, partial(mark, now=iso_time(now)))
                count += 1
        return count

    def sweep(self, repoll_stitches: bool = True) -> dict[str, int]:
        """Nothing stays stuck (a scheduled function runs this every few minutes):

        - a job queued with no run (the callable died after writing it, the event was lost) gets
          its start sent again; the event id is its run key, so a start that did go out is not
          doubled. After MAX_REQUEUES it fails, saying it could not be started.
        - a job generating with no write for longer than a scene can take has lost its run (a run
          cancelled in Inngest's dashboard, say): it fails with that reason and can be resumed.
        - a job stitching whose poller died gets its poller again (the lease released, the round
          counted: the write fires it), or, with no Transcoder job to poll, fails.
        """
        now = self.clock()
        done = {"requeued": 0, "failed": 0, "repolled": 0}
        for status, after in STUCK_AFTER.items():
            for job in self.jobs.stale(status.value, iso_time(now - after)):
                with log_context(jobId=job.job_id, userId=job.user_id):
                    done[self._unstick(job, now, repoll_stitches)] += 1
        if any(done.values()):
            log.warning("swept stuck jobs: %s", done)
        return done

    def _unstick(self, job: Job, now: datetime, repoll_stitches: bool) -> str:
        minutes = int(STUCK_AFTER[job.status].total_seconds() // 60)
        if job.status is Status.QUEUED and job.requeues < MAX_REQUEUES:
            self.engine.start(job)
            self.jobs.update(job.job_id, lambda j: j.note_requeue())
            log.warning("queued for %d min with no run: its start was sent again", minutes)
            return "requeued"
        if job.status is Status.STITCHING and job.stitch_job and repoll_stitches:
            self.jobs.update(job.job_id, lambda j: j.hand_over_stitch() if j.status is Status.STITCHING else None)
            log.warning("stitching with no poller for %d min: polled again", minutes)
            return "repolled"
        reasons = {
            Status.QUEUED: f"could not be started: still queued after {MAX_REQUEUES + 1} tries",
            Status.GENERATING: f"the run stopped: nothing happened for {minutes} min",
            Status.STITCHING: f"the stitch stopped: nothing happened for {minutes} min",
        }
        reason = f"{reasons[job.status]}; resume the job to finish it"
        step = "stitch" if job.status is Status.STITCHING else "sweep"
        self.jobs.update(
            job.job_id,
            lambda j: (j.fail_stitch if step == "stitch" else j.fail)(reason, step) if j.status is job.status else None,
        )
        log.error("stuck job failed: %s", reason)
        return "failed"

    def blobs(self) -> BlobStore:
        if self._blobs is None:
            raise RuntimeError("this service was made without a blob store")
        return self._blobs()

    def resume(self, caller: Caller | None, data: Any, unfinished: bool = False) -> dict[str, str]:
        """Continue the caller's failed job in place: the scenes made are kept, only the missing
        ones are generated, and the seconds it gave back are booked again (within today's
        budget). ``unfinished``: also start again a job that is not final (the local CLI, whose
        killed runs leave such jobs; in the cloud an unfinished job still has its run)."""
        user = _signed_in(caller)
        job_id = _job_id(data)
        with log_context(userId=user.user_id, jobId=job_id):
            job = self._owned(user, job_id, "resume")
            if job.status is Status.FAILED:
                job = self.jobs.update(job_id, lambda j: j.resume(iso_time(self.clock())), self._limits_for(user))
                log.info("failed job resumed (resume %d)", len(job.resumes))
            elif job.status.is_final or not unfinished:
                raise NotResumable(job_id, job.status.value)
            self.engine.start(job)
            return _ref(job)

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

    def _stop(self, job: Job) -> Job:
        """Cancel a job that is not final and tell its engine (the run also stops by itself)."""
        if job.status.is_final:
            return job
        job = self.jobs.update(job.job_id, _cancel)
        try:
            self.engine.cancel(job)
        except Exception as exc:
            log.warning("the engine was not told of the cancel: %s", exc)
        log.info("job cancelled")
        return job

    def _owned(self, user: Caller, job_id: str, doing: str) -> Job:
        job = self.jobs.get(job_id)
        if job.user_id != user.user_id:
            raise PermissionDenied(f"only the job's owner can {doing} it")
        return job


def _signed_in(caller: Caller | None) -> Caller:
    if caller is None or not caller.user_id:
        raise Unauthenticated("sign in to make videos")
    return caller


# What retention removes of a job (its files' folders) and how the job records it.
_REMOVED = {"scenes": (("segments", "frames"), Job.remove_scene_media), "video": (("final",), Job.remove_video)}


def _job_id(data: Any) -> str:
    job_id = data.get("jobId") if isinstance(data, dict) else None
    if not is_job_id(job_id):
        raise InvalidRequest("jobId", "must be a job id")
    return job_id


def _version_of(job: Job, request_id: str | None) -> int | None:
    """The version an edit with ``request_id`` made, if one did."""
    if request_id is None:
        return None
    if job.edit_request_id == request_id:
        return job.version
    return next((v.number for v in job.versions if v.edit_request_id == request_id), None)


def _version(data: Any, job: Job) -> int:
    """The version ``data`` asks for (the current one when it names none)."""
    number = data.get("version", job.version) if isinstance(data, dict) else job.version
    known = [v.number for v in job.versions] + [job.version]
    if type(number) is not int or number not in known:
        raise InvalidRequest("version", f"must be one of the job's versions: {', '.join(map(str, known))}")
    return number


def _ref(job: Job) -> dict[str, str]:
    return {"jobId": job.job_id, "status": job.status.value}


def _priced(job: Job) -> dict[str, Any]:
    """The trigger's answer: the job, and what it is estimated to cost (when priced)."""
    return _ref(job) | ({"cost": job.cost.model_dump(mode="json")} if job.cost else {})


def _cancel(job: Job) -> None:
    if not job.status.is_final:
        job.move_to(Status.CANCELLED)
