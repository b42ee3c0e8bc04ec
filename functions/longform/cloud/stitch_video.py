"""Inngest function ``stitch_video``: concatenate a job's segments into the final video.

Triggered by ``video/stitch.requested`` {jobId, userId, segmentKeys}. It starts the stitch; with
``STITCH_BACKEND=ffmpeg`` (in this function) it also polls it to the end and completes the job,
while a Transcoder job is completed by the Firestore-triggered poller. Same retries, cancel and
failure handling as generate_long_form_video; a failure is recorded as the job's stitch error.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import inngest

from ..logs import log_context
from ..workflow import start_stitch, wait_for_stitch
from .composition import Cloud
from .generate_long_form_video import RETRIES
from .inngest_client import JOB_CANCELLED, STITCH_REQUESTED, event_field
from .inngest_steps import InngestSteps, marks_job_failed, run_workflow


def create(cloud: Cloud) -> inngest.Function[Any]:
    """The function, on the cloud's Inngest client, running against the cloud's pipeline."""

    @cloud.inngest.create_function(
        fn_id="stitch_video",
        name="Stitch video",
        trigger=inngest.TriggerEvent(event=STITCH_REQUESTED),
        retries=RETRIES,
        cancel=[inngest.Cancel(event=JOB_CANCELLED, if_exp="event.data.jobId == async.data.jobId")],
        idempotency="event.data.runKey",
        on_failure=marks_job_failed(
            lambda: cloud.jobs, "stitch"
        ),  # a failure outside a step (a poll limit) is still the stitch's
    )
    def stitch_video(ctx: inngest.ContextSync) -> dict[str, Any]:
        job_id, user_id = event_field(ctx.event, "jobId"), event_field(ctx.event, "userId")
        keys = ctx.event.data.get("segmentKeys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise inngest.NonRetriableError(f"{STITCH_REQUESTED} without segmentKeys")
        with log_context(jobId=job_id, userId=user_id):
            return run_workflow(job_id, partial(_stitch, cloud, ctx, job_id, [str(k) for k in keys]))

    return stitch_video


def _stitch(cloud: Cloud, ctx: inngest.ContextSync, job_id: str, keys: list[str]) -> dict[str, Any]:
    pipeline, steps = cloud.pipeline, InngestSteps(ctx)
    name = start_stitch(pipeline, steps, job_id, keys)
    if cloud.settings.stitch_backend != "ffmpeg":
        return {"jobId": job_id, "stitchJob": name}  # the poller takes it from here
    wait_for_stitch(pipeline, steps, job_id, name)
    return {"jobId": job_id, "stitchJob": name, "completed": True}
