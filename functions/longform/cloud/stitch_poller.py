"""The Firestore-triggered poller: completes a job whose stitch runs outside the function
(a Transcoder job), by polling it with backoff within a time budget.

Every write to ``videoJobs/{jobId}`` fires the trigger, progress writes and the poller's own
included. So it acts only when the stitch bookkeeping changed (the stitch job was recorded, or a
previous invocation handed over), and only after taking a lease in a transaction: of two
invocations fired together, one polls and the other returns. An invocation that runs out of
budget records the attempt and releases the lease; that write fires the next invocation.

With TRANSCODER_TOPIC set the Transcoder's Pub/Sub notice ends the job as soon as its stitch ends
(stitch_notifications.py), and the poller is the safety net behind it: it polls no sooner than
STITCH_SAFETY_NET_SECONDS after the stitch started, looking meanwhile whether the notice ended the
job. Either way a job is ended by ``settle_stitch``, written once here: only a job still stitching
is ended, in the store's transaction, so the poller and the notice (or a notice delivered twice)
end it and bill its stitch once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ..errors import PermanentError, QuotaExceeded, TransientError
from ..job import Job, Status
from ..job_events import log_quota_hit
from ..logs import log_context
from ..ports import BlobStore, JobStore, MediaChecker, Stitcher
from ..prices import Pricing
from ..workflow import expected_video, stitch_cost
from .composition import Cloud

log = logging.getLogger(__name__)
FIRST_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 30.0
WAIT_CHECK_SECONDS = 10.0  # while the safety net waits, how often it looks whether the notice ended the job
_STITCH_FIELDS = ("status", "stitchJob", "stitchPollAttempts", "stitchLeaseUntil")


class _NotDue(Exception):
    """Another invocation holds the lease, or the job moved on: nothing to do."""


@dataclass(frozen=True)
class StitchEnding:
    """What ends a job's stitch, for the poller and the Pub/Sub notice alike: the ports it reads
    and writes, and how long the final video's link lives."""

    jobs: JobStore
    stitcher: Stitcher
    blobs: BlobStore
    checker: MediaChecker
    pricing: Pricing
    signed_url_hours: int = 72

    @classmethod
    def of(cls, cloud: Cloud) -> StitchEnding:
        hours = cloud.settings.signed_url_hours
        return cls(cloud.jobs, cloud.stitcher, cloud.blobs, cloud.checker, cloud.pricing, hours)


@dataclass(frozen=True)
class PollRound:
    """How one invocation of the poller polls: within ``budget_seconds``, at most ``max_attempts``
    rounds in all; ``safety_net_seconds``: when a Pub/Sub notice is to end the job, no poll sooner
    than this after the stitch started (at the latest at the end of the budget), and none once the
    job has ended."""

    budget_seconds: float
    max_attempts: int
    safety_net_seconds: float = 0.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def on_job_updated(
    job_id: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, cloud: Cloud
) -> None:
    """The trigger's entry: decide from the change alone whether a poll may be due, or whether a
    job was cancelled while its stitch ran (then the stitch is stopped: nobody will use it)."""
    if _cancelled_while_stitching(before, after) and cloud.settings.stitch_backend == "transcoder":
        assert after is not None
        with log_context(jobId=job_id, userId=after.get("userId"), step="stitch-cancel"):
            cloud.stitcher.cancel(after["stitchJob"])
            log.info("stitch %s stopped: the job was cancelled", after["stitchJob"])
        return
    if after is None or after.get("status") != Status.STITCHING or not after.get("stitchJob"):
        return
    if before is not None and all(before.get(f) == after.get(f) for f in _STITCH_FIELDS):
        return  # a progress-only (or unrelated) update
    if after.get("stitchLeaseUntil"):
        return  # our own lease write; the holder is polling
    settings = cloud.settings
    if settings.stitch_backend != "transcoder":
        return  # the in-function stitcher completes its job itself (stitch_video)
    with log_context(jobId=job_id, userId=after.get("userId"), step="stitch-poll"):
        rounds = PollRound(
            settings.stitch_poll_budget_seconds,
            settings.stitch_max_poll_attempts,
            safety_net_seconds=settings.stitch_safety_net_seconds if settings.transcoder_topic else 0.0,
        )
        poll_stitch(StitchEnding.of(cloud), job_id, rounds)


def _cancelled_while_stitching(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> bool:
    return (
        before is not None
        and after is not None
        and before.get("status") == Status.STITCHING
        and after.get("status") == Status.CANCELLED
        and bool(after.get("stitchJob"))
    )


def poll_stitch(ending: StitchEnding, job_id: str, rounds: PollRound) -> None:
    """Poll the job's stitch until it ends or the round's budget is spent; leave the job truthful."""
    jobs = ending.jobs
    lease = timedelta(seconds=rounds.budget_seconds + 60)
    try:
        job = jobs.update(job_id, lambda j: _claim(j, lease))
    except _NotDue:
        return
    assert job.stitch_job is not None
    try:
        _poll_round(ending, job, job.stitch_poll_attempts + 1, rounds)
    except BaseException:
        # Whatever stopped this round (a bug, a store that is down): its lease is given back, the
        # round counted, so the next invocation polls and the rounds stay bounded.
        with contextlib.suppress(Exception):
            jobs.update(job_id, lambda j: j.hand_over_stitch() if j.status is Status.STITCHING else None)
        raise


def _poll_round(ending: StitchEnding, job: Job, attempt: int, rounds: PollRound) -> None:
    assert job.stitch_job is not None
    jobs, job_id, clock = ending.jobs, job.job_id, rounds.clock
    deadline = clock() + rounds.budget_seconds
    delay = FIRST_DELAY_SECONDS
    with log_context(attempt=attempt):
        if rounds.safety_net_seconds and not _waited_for_notice(jobs, job, rounds, deadline):
            return
        while True:
            if settle_stitch(ending, job):
                return
            if clock() + delay > deadline:
                break
            rounds.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)
        if attempt >= rounds.max_attempts:
            reason = f"the stitch did not finish after {attempt} polling rounds of {rounds.budget_seconds:.0f}s"
            if _end(jobs, job_id, partial(Job.fail_stitch, reason=reason)):
                log.error(reason)
        else:
            jobs.update(job_id, lambda j: j.hand_over_stitch() if j.status is Status.STITCHING else None)
            log.info("stitch still running after round %d; handing over", attempt)


def settle_stitch(ending: StitchEnding, job: Job) -> bool:
    """Ask once how ``job``'s stitch is doing and, when it has ended, end the job with it:
    completed (its video checked, linked and priced) or failed with the stitch's error. True when
    the stitch has ended; False when it still runs or the Transcoder could not say (a refusal for
    quota is counted on the job). Only a job still stitching is ended, in the store's transaction:
    of two callers (the poller and the Pub/Sub notice, or a notice delivered twice) one ends the job
    and bills its stitch, the other changes nothing."""
    assert job.stitch_job is not None
    jobs, blobs = ending.jobs, ending.blobs
    try:
        result = ending.stitcher.poll(job.stitch_job)
        if result.done and result.key is not None:  # integrity before acceptance
            ending.checker.check(result.key, expected_video(job), decode_video=False)
    except PermanentError as exc:  # the Transcoder job failed, or made a broken video
        if _end(jobs, job.job_id, partial(Job.fail_stitch, reason=str(exc))):
            log.error("stitch failed: %s", exc)
        else:
            log.info("stitch failed (%s); the job had already ended", exc)
        return True
    except QuotaExceeded as exc:
        log_quota_hit(exc, None)
        jobs.update(job.job_id, lambda j: j.note_quota_hit(None))
        return False
    except TransientError as exc:
        log.warning("stitch poll failed, will retry: %s", exc)
        return False
    if not (result.done and result.key is not None):
        return False
    uri = blobs.uri(result.key)
    url = blobs.signed_url(result.key, timedelta(hours=ending.signed_url_hours))
    complete = partial(Job.complete, video_uri=uri, video_url=url, stitch_usd=stitch_cost(ending.pricing, job))
    if _end(jobs, job.job_id, complete):
        log.info("stitch done: %s", uri)
    else:
        log.info("stitch done (%s); the job had already ended", uri)
    return True


def _waited_for_notice(jobs: JobStore, job: Job, rounds: PollRound, deadline: float) -> bool:
    """Wait until the round's ``safety_net_seconds`` after the stitch started (at most until ``deadline``),
    looking every WAIT_CHECK_SECONDS whether the job is still stitching. True: poll now; False:
    the job ended meanwhile (the notice ended it, or a cancel), there is nothing to poll."""
    began = job.timings.get("stitchStartedAt")
    if not began:
        return True
    clock = rounds.clock
    since = (datetime.now(UTC) - datetime.fromisoformat(began)).total_seconds()
    until = min(deadline, clock() + max(0.0, rounds.safety_net_seconds - since))
    if until > clock():
        log.info("waiting up to %.0f s for the Transcoder's Pub/Sub notice before polling", until - clock())
    while clock() < until:
        rounds.sleep(min(WAIT_CHECK_SECONDS, until - clock()))
        now = jobs.get(job.job_id)
        if now.status is not Status.STITCHING:
            log.info("the job is %s meanwhile: nothing to poll", now.status)
            return False
    return True


def _claim(job: Job, lease: timedelta) -> None:
    now = datetime.now(UTC)
    if job.status is not Status.STITCHING or not job.stitch_job:
        raise _NotDue
    if job.stitch_lease_until and datetime.fromisoformat(job.stitch_lease_until) > now:
        raise _NotDue
    job.stitch_lease_until = (now + lease).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _end(jobs: JobStore, job_id: str, finish: Callable[[Job], None]) -> bool:
    """Apply ``finish`` to the job if it is still stitching (a job cancelled meanwhile stays
    cancelled, one ended already stays as it ended), and free the lease: whether this call ended it."""
    ended = [False]

    def change(job: Job) -> None:  # may run more than once (the store retries on contention)
        job.stitch_lease_until = None
        ended[0] = job.status is Status.STITCHING
        if ended[0]:
            finish(job)

    jobs.update(job_id, change)
    return ended[0]
