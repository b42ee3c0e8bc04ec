"""Inngest function ``generate_long_form_video``: make every segment of a job, then ask for the stitch.

Triggered by ``video/long_form.requested`` {jobId, userId}, which the trigger callable sends with
the job id as event id. Flow control is declared here: retries per step, step concurrency per
user and for the video model, cancel on ``video/long_form.cancelled`` for the same job, one run
per job. A run that fails for good marks the job failed with the reason and the failing step.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import inngest

from ..logs import log_context
from ..workflow import generate_segments
from .composition import Cloud
from .inngest_client import JOB_CANCELLED, JOB_REQUESTED, STITCH_REQUESTED, event_field, run_key_of
from .inngest_steps import InngestSteps, marks_job_failed, run_workflow

# Per step: 10 attempts with Inngest's backoff. Each step makes one fallible call, so even with 30 %
# of calls failing a step gives up once in 170,000 (tests/contract/test_faults.py).
RETRIES = 9
# A virtual queue shared by every function of this environment that calls the video model.
VIDEO_MODEL_QUEUE = '"video-model"'


def create(cloud: Cloud) -> inngest.Function[Any]:
    """The function, on the cloud's Inngest client, running against the cloud's pipeline."""

    @cloud.inngest.create_function(
        fn_id="generate_long_form_video",
        name="Generate long-form video",
        trigger=inngest.TriggerEvent(event=JOB_REQUESTED),
        retries=RETRIES,
        # Inngest counts executing steps, not runs: sleeping runs hold no slot, and a poll step
        # holds one while it waits for Veo (up to POLL_BUDGET_SECONDS).
        concurrency=[
            inngest.Concurrency(key="event.data.userId", limit=cloud.settings.user_concurrency),
            inngest.Concurrency(scope="env", key=VIDEO_MODEL_QUEUE, limit=cloud.settings.model_concurrency),
        ],
        cancel=[inngest.Cancel(event=JOB_CANCELLED, if_exp="event.data.jobId == async.data.jobId")],
        idempotency="event.data.runKey",  # one run per job, resume and version (the job id, jobId-r1, jobId-v2, …)
        on_failure=marks_job_failed(lambda: cloud.jobs),
    )
    def generate_long_form_video(ctx: inngest.ContextSync) -> dict[str, Any]:
        job_id, user_id = event_field(ctx.event, "jobId"), event_field(ctx.event, "userId")
        with log_context(jobId=job_id, userId=user_id):
            return run_workflow(job_id, partial(_generate, cloud, ctx, job_id, user_id))

    return generate_long_form_video


def _generate(cloud: Cloud, ctx: inngest.ContextSync, job_id: str, user_id: str) -> dict[str, Any]:
    keys = generate_segments(cloud.pipeline, InngestSteps(ctx), job_id)
    # A step of its own, so a replay does not send it again; the event id makes Inngest drop a
    # repeat should the send be retried after it went through.
    run_key = run_key_of(ctx.event)
    data = {"jobId": job_id, "userId": user_id, "segmentKeys": keys, "runKey": run_key}
    stitch = inngest.Event(name=STITCH_REQUESTED, data=data, id=f"{run_key}-stitch")
    ctx.step.send_event("request-stitch", stitch)
    return {"jobId": job_id, "segmentKeys": keys}
