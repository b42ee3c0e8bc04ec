"""Firebase entry points of the ``longform`` codebase: a thin list, no logic.

Each handler hands the request and the one composition root (``Cloud``) to the ``longform.cloud``
package. The composition builds its clients on first use, so ``firebase deploy`` can import this
file to discover the functions without credentials.

Every deployed function imports this file when an instance of it starts cold, so it imports
only the decorators and what the params need; what a handler uses (the Inngest SDK, the Google
Cloud clients, the workflow, firestore_fn for the trigger) is imported on its first call
(``bench/cold_import.py`` times it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from firebase_admin import initialize_app
from firebase_functions import https_fn, options, pubsub_fn, scheduler_fn

from longform.cloud import callables, firestore_trigger, inngest_app
from longform.cloud.composition import Cloud
from longform.cloud.params import DEPLOY, INNGEST_EVENT_KEY, INNGEST_SIGNING_KEY
from longform.config import JOBS_COLLECTION
from longform.logs import setup_json_logging

if TYPE_CHECKING:
    from firebase_functions import firestore_fn

initialize_app()  # lazy credentials: the callables need it to verify ID and App Check tokens
setup_json_logging()
callables.use_app_check_keys(DEPLOY.app_check_jwks_url)
cloud = Cloud()
REGION = DEPLOY.region
CALLABLE = {  # every callable: App Check enforced unless ENFORCE_APP_CHECK=false (local development)
    "region": REGION,
    "timeout_sec": 60,
    "memory": options.MemoryOption.MB_512,
    "secrets": [INNGEST_EVENT_KEY],
    "enforce_app_check": DEPLOY.enforce_app_check,
}


@callables.on_call(**CALLABLE)
def trigger_long_form_video_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Validate a request, store the job as queued, start it on Inngest."""
    return callables.trigger_job(req, cloud)


@callables.on_call(**CALLABLE)
def cancel_long_form_video_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Cancel the caller's own job: no further segment starts."""
    return callables.cancel_job(req, cloud)


@callables.on_call(**CALLABLE)
def resume_long_form_video_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Continue the caller's failed job in place, paying only for the scenes still missing."""
    return callables.resume_job(req, cloud)


@callables.on_call(**CALLABLE)
def edit_long_form_video_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Edit the caller's ended job into a new version, paying only for the scenes it changes."""
    return callables.edit_job(req, cloud)


@callables.on_call(**CALLABLE)
def get_playback_urls(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Short-lived signed links to play the caller's own job (the bucket is private)."""
    return callables.playback_urls(req, cloud)


@callables.on_call(**CALLABLE)
def delete_long_form_video_job(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Delete the caller's own job, its files and its document."""
    return callables.delete_job(req, cloud)


@https_fn.on_request(
    region=REGION,
    timeout_sec=1800,  # one step at most: a Veo start or poll, a frame, an in-function stitch
    memory=options.MemoryOption.GB_2,
    cpu=2,
    secrets=[INNGEST_SIGNING_KEY, INNGEST_EVENT_KEY],
)
def inngest_api(req: https_fn.Request) -> https_fn.Response:
    """Serve the Inngest functions generate_long_form_video and stitch_video."""
    return inngest_app.handle(req, cloud)


@firestore_trigger.on_document_updated(  # firestore_fn.on_document_updated, imported at the first event
    document=JOBS_COLLECTION + "/{jobId}", region=REGION, timeout_sec=540, memory=options.MemoryOption.MB_512
)
def poll_transcoder_job(event: firestore_fn.Event[firestore_fn.Change[firestore_fn.DocumentSnapshot | None]]) -> None:
    """Complete (or fail) a job whose Transcoder stitch is running."""
    from longform.cloud import stitch_poller

    change = event.data
    stitch_poller.on_job_updated(
        event.params["jobId"],
        change.before.to_dict() if change.before else None,
        change.after.to_dict() if change.after else None,
        cloud,
    )


if DEPLOY.transcoder_topic:  # declared only when the Transcoder publishes its jobs' end (TRANSCODER_TOPIC)

    @pubsub_fn.on_message_published(
        topic=DEPLOY.transcoder_topic, region=REGION, timeout_sec=300, memory=options.MemoryOption.MB_512
    )
    def settle_transcoder_job(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData[Any]]) -> None:
        """Complete (or fail) a stitching job as soon as the Transcoder says its job ended."""
        from longform.cloud import stitch_notifications

        stitch_notifications.on_message(event.data.message, cloud)


@scheduler_fn.on_schedule(schedule="every 24 hours", region=REGION, timeout_sec=540, memory=options.MemoryOption.MB_512)
def remove_old_media(event: scheduler_fn.ScheduledEvent) -> None:
    """Retention: segments and frames of old finished jobs (and, if set, final videos) are deleted."""
    settings = cloud.settings
    cloud.service.remove_old_media(settings.scene_retention_days, settings.video_retention_days)


@scheduler_fn.on_schedule(
    schedule="every 5 minutes", region=REGION, timeout_sec=300, memory=options.MemoryOption.MB_512
)
def sweep_stuck_jobs(event: scheduler_fn.ScheduledEvent) -> None:
    """Nothing stays stuck: a lost start is sent again, a dead poller replaced, a lost run failed."""
    cloud.service.sweep(repoll_stitches=cloud.settings.stitch_backend == "transcoder")
