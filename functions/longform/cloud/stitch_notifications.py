"""The Transcoder's Pub/Sub notice: a job is ended as soon as its stitch ends, not when the poller
next looks.

A Transcoder job created with ``pubsubDestination`` (TRANSCODER_TOPIC) makes the service publish,
once the job has SUCCEEDED or FAILED and for no other state, ``{"job": {"name": …, "state": …,
"error": {…}}}`` (https://cloud.google.com/transcoder/docs/how-to/create-pub-sub). The notice is a
hint, not the truth: the job is found by its Transcoder job name (``stitchJob``), and ended by the
poller's own ``settle_stitch``, which asks the Transcoder for the job's state and checks the video
before the job is completed. So a forged or stale message can end nothing the Transcoder does not
confirm, a message delivered twice, or after the poller ended the job (or before it), changes
nothing more and bills nothing more, and a message about a Transcoder job that is not one of ours
(another app's, another run's) is acknowledged and logged.

Nothing here raises for a message: Pub/Sub functions are not retried (a raised error would only be
logged), and a notice that could not be acted on is the poller's to finish.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..errors import LongformError
from ..job import Job, Status
from ..logs import log_context
from ..ports import JobStore
from .composition import Cloud
from .stitch_poller import StitchEnding, settle_stitch

log = logging.getLogger(__name__)
STEP = "stitch-notified"  # the log lines' step: which path ended a job (the poller's is stitch-poll)


@runtime_checkable
class StitchIndexedJobs(JobStore, Protocol):
    """A job store that finds a job by its stitch (only the cloud's: Transcoder jobs are the cloud's)."""

    def with_stitch_job(self, name: str) -> Job | None: ...


def transcoder_notice(payload: object) -> tuple[str, str] | None:
    """The Transcoder job's name and state in a notice's JSON, or None if it is not one."""
    job = payload.get("job") if isinstance(payload, Mapping) else None
    name = job.get("name") if isinstance(job, Mapping) else None
    if not isinstance(name, str) or "/jobs/" not in name:
        return None
    state = job.get("state") if isinstance(job, Mapping) else None
    return name, state if isinstance(state, str) else ""


def on_message(message: Any, cloud: Cloud) -> None:
    """The Pub/Sub function's entry: ``message`` is ``pubsub_fn.Message`` (its ``json`` the
    notice). Ends the job the notice is about, if it is ours and still stitching."""
    try:
        payload = message.json
    except ValueError as exc:
        log.warning("ignored a message on the Transcoder topic (id %s): %s", message.message_id, exc)
        return
    notice = transcoder_notice(payload)
    if notice is None:
        log.warning("ignored a message on the Transcoder topic (id %s): not a job's notice", message.message_id)
        return
    on_transcoder_notice(*notice, cloud)


def on_transcoder_notice(name: str, state: str, cloud: Cloud) -> None:
    """End the job whose stitch is the Transcoder job ``name``, if it is ours and still stitching."""
    jobs = cloud.jobs
    with log_context(step=STEP):
        if cloud.settings.stitch_backend != "transcoder" or not isinstance(jobs, StitchIndexedJobs):
            log.warning("ignored the notice of Transcoder job %s: this deployment does not stitch with it", name)
            return
        try:
            job = jobs.with_stitch_job(name)
        except LongformError as exc:  # the store is down: the poller finishes the job
            log.warning("could not look up Transcoder job %s (%s); the poller will finish its job", name, exc)
            return
        if job is None:
            log.info("ignored the notice of Transcoder job %s (%s): no job of ours stitches with it", name, state)
            return
        with log_context(jobId=job.job_id, userId=job.user_id):
            if job.status is not Status.STITCHING:
                log.info("Transcoder job %s ended (%s); the job is already %s", name, state, job.status)
                return
            log.info("Transcoder job %s ended (%s)", name, state)
            try:
                ended = settle_stitch(StitchEnding.of(cloud), job)
            except LongformError as exc:  # the store or the bucket is down: the poller finishes the job
                log.warning("could not end the job on the notice (%s); the poller will", exc)
                return
            if not ended:
                log.warning("the Transcoder does not confirm that job %s ended; the poller will finish it", name)
