"""The logic of the two callables: start a job, cancel a job.

Errors are ``HttpsError``s with the code a Firebase client expects: UNAUTHENTICATED without a
signed-in user, INVALID_ARGUMENT naming the field and the rule (also in ``details``),
RESOURCE_EXHAUSTED over the active-job limit, NOT_FOUND / PERMISSION_DENIED for someone else's
job, UNAVAILABLE when the job could not be queued.
"""

from __future__ import annotations

import logging
from typing import Any

from firebase_functions import https_fn
from firebase_functions.https_fn import FunctionsErrorCode as Code
from firebase_functions.https_fn import HttpsError

from ..errors import InvalidRequest, JobNotFound, TooManyActiveJobs
from ..job import Job, Status, idempotent_job_id, is_job_id, new_job_id
from ..logs import log_context
from ..request import SEGMENT_SECONDS, Limits, model_segment_seconds, validate_request
from . import inngest_client, params, runtime

log = logging.getLogger(__name__)
TRANSCODER_MIN_SECONDS = 5  # every Transcoder input must be at least this long


def trigger_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Validate, store the job as queued, send ``video/long_form.requested`` (event id = jobId)."""
    user_id = _user(req)
    with log_context(userId=user_id):
        try:
            request = validate_request(req.data, deployment_limits(params.settings()))
        except InvalidRequest as exc:
            problems = [{"field": field, "rule": rule} for field, rule in exc.problems]
            raise HttpsError(
                Code.INVALID_ARGUMENT, str(exc), {"field": exc.field, "rule": exc.rule, "problems": problems}
            ) from None
        # The same user with the same requestId gets the same job: the id is derived from both.
        job_id = idempotent_job_id(user_id, request.request_id) if request.request_id else new_job_id()
        try:
            job, created = runtime.jobs().submit(Job.new(request, user_id, job_id), params.settings().max_active_jobs)
        except TooManyActiveJobs as exc:
            raise HttpsError(Code.RESOURCE_EXHAUSTED, str(exc), {"limit": exc.limit}) from None
        with log_context(jobId=job.job_id):
            if not created:
                log.info("request %s already made job %s", request.request_id, job.job_id)
                return {"jobId": job.job_id, "status": job.status.value}
            try:
                inngest_client.send_event(inngest_client.JOB_REQUESTED, {"jobId": job_id, "userId": user_id}, id=job_id)
            except Exception as exc:
                # Nothing would ever run a queued job whose event was lost: say so on the job.
                reason = f"could not queue the job: {exc}"
                runtime.jobs().update(job_id, lambda j: j.fail(reason, "enqueue"))
                log.error("job %s not queued: %s", job_id, exc)
                raise HttpsError(
                    Code.UNAVAILABLE, "the job could not be queued; try again", {"jobId": job_id}
                ) from None
            log.info("job queued: %d scene(s) × %ds", len(request.prompts), request.segment_seconds)
            return {"jobId": job_id, "status": job.status.value}


def cancel_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Mark the owner's job cancelled (no further segment starts) and tell Inngest to stop the run."""
    user_id = _user(req)
    data = req.data if isinstance(req.data, dict) else {}
    job_id = data.get("jobId")
    if not is_job_id(job_id):
        raise HttpsError(
            Code.INVALID_ARGUMENT, "jobId: must be a job id", {"field": "jobId", "rule": "must be a job id"}
        )
    with log_context(userId=user_id, jobId=job_id):
        jobs = runtime.jobs()
        try:
            job = jobs.get(job_id)
        except JobNotFound:
            raise HttpsError(Code.NOT_FOUND, f"no job {job_id}") from None
        if job.user_id != user_id:
            raise HttpsError(Code.PERMISSION_DENIED, "only the job's owner can cancel it")
        if not job.status.is_final:
            job = jobs.update(job_id, _cancel)
            try:
                inngest_client.send_event(inngest_client.JOB_CANCELLED, {"jobId": job_id, "userId": user_id})
            except Exception as exc:  # the job is cancelled already; the run stops at its next step
                log.warning("cancel event not sent: %s", exc)
            log.info("job cancelled")
        return {"jobId": job_id, "status": job.status.value}


def deployment_limits(settings: params.CloudSettings) -> Limits:
    """The segment lengths this deployment can make: the model's, and ≥ 5 s for the Transcoder."""
    allowed = model_segment_seconds(settings.veo_model) if settings.video_model == "veo" else SEGMENT_SECONDS
    why = [f"with {settings.veo_model}"] if settings.video_model == "veo" else []
    if settings.stitch_backend == "transcoder":
        allowed = tuple(s for s in allowed if s >= TRANSCODER_MIN_SECONDS)
        why.append("and the Transcoder stitcher, which joins segments of 5 s or more (STITCH_BACKEND=ffmpeg takes 4)")
    return Limits(segment_seconds=allowed, why=" ".join(why))


def _cancel(job: Job) -> None:
    if not job.status.is_final:
        job.move_to(Status.CANCELLED)


def _user(req: https_fn.CallableRequest[Any]) -> str:
    # firebase_functions lets a call without a token through with auth None: refuse it here.
    if req.auth is None or not req.auth.uid:
        raise HttpsError(Code.UNAUTHENTICATED, "sign in to make videos")
    return str(req.auth.uid)
