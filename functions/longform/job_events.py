"""One log line for each event a metric counts: a scene made, a job ended. The stores call
``log_events`` after a write commits, so each event is logged once, by the write that made it,
whichever transport or engine made the write. Quota hits are logged where they are caught
(``workflow.counting_quota``, the stitch poller), with ``event: quota_hit``.

The fields are what Cloud Logging's log-based metrics in ``monitoring/`` extract
(``jsonPayload.event``, ``jsonPayload.latencySeconds``…): keep the two in step.
"""

from __future__ import annotations

import logging

from .job import Job, SegmentStatus, Status, seconds_between
from .logs import fields
from .stats import step_kind

log = logging.getLogger("longform.events")

SCENE_COMPLETED = "scene_completed"
JOB_FINISHED = "job_finished"
QUOTA_HIT = "quota_hit"


def log_events(before: Job, after: Job) -> None:
    """Log what the write from ``before`` to ``after`` did: scenes that became completed, and the
    job reaching a final status. An edit's write made nothing (its reused scenes were made before)."""
    if after.version != before.version:
        return
    owner = {"jobId": after.job_id, "userId": after.user_id, "model": after.cost.priced_as if after.cost else None}
    for old, new in zip(before.segments, after.segments, strict=False):
        if new.status is SegmentStatus.COMPLETED and old.status is not SegmentStatus.COMPLETED:
            log.info(
                "scene %d made",
                new.index + 1,
                extra=fields(
                    event=SCENE_COMPLETED,
                    **owner,
                    scene=new.index + 1,
                    attempts=new.attempts,
                    latencySeconds=_seconds(new.started_at, new.completed_at),
                    costUsd=new.cost_usd,
                    estimated=bool(after.cost and after.cost.estimated),
                ),
            )
    if after.status.is_final and after.status != before.status:
        end = after.timings.get(f"{after.status.value}At")
        log.info(
            "job %s",
            after.status.value,
            extra=fields(
                event=JOB_FINISHED,
                **owner,
                status=after.status.value,
                errorStep=after.error_step,
                failedStep=step_kind(after.error_step) if after.status is Status.FAILED else None,
                scenes=len(after.segments),
                latencySeconds=_seconds(after.timings.get("createdAt"), end),
                costUsd=after.cost.total_usd if after.cost else 0.0,
                estimated=bool(after.cost and after.cost.estimated),
                quotaHits=after.quota_hits,
            ),
        )


def log_quota_hit(refusal: Exception, scene: int | None) -> None:
    """A call refused for quota: Veo's for ``scene`` (1-based), the Transcoder's when None."""
    service = "transcoder" if scene is None else "veo"
    log.warning("quota hit: %s", refusal, extra=fields(event=QUOTA_HIT, quotaHit=True, service=service, scene=scene))


def _seconds(start: str | None, end: str | None) -> float | None:
    return round(seconds_between(start, end), 3) if start and end else None
