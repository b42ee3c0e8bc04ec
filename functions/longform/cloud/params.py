"""All cloud configuration in one place: Firebase params (functions/.env, or asked at deploy)
and secrets (Secret Manager; functions/.secret.local on the emulators).

Values are read at run time through ``settings()``, never at import, except ``REGION``:
function options are fixed when ``firebase deploy`` discovers the functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from firebase_functions import params

REGION = os.environ.get("LONGFORM_REGION", "us-central1")
JOBS_COLLECTION = "videoJobs"

BUCKET = params.StringParam(
    "LONGFORM_BUCKET", default="", description="Cloud Storage bucket for segments and videos (gs:// without prefix)"
)
LOCAL_DIR = params.StringParam(
    "LONGFORM_LOCAL_DIR", default="", description="a local folder used instead of a bucket (emulators, tests)"
)
VIDEO_MODEL = params.StringParam("VIDEO_MODEL", default="veo", description="veo, or preview (the offline renderer)")
VEO_MODEL = params.StringParam("VEO_MODEL", default="veo-3.1-fast-generate-001", description="the Veo model id")
STITCH_BACKEND = params.StringParam(
    "STITCH_BACKEND", default="transcoder", description="transcoder, or ffmpeg (PyAV stream copy in the function)"
)
VERTEX_LOCATION = params.StringParam("VERTEX_LOCATION", default="us-central1", description="Vertex AI region for Veo")
VERTEX_BASE_URL = params.StringParam(
    "VERTEX_BASE_URL", default="", description="Vertex AI endpoint (empty: the region's public endpoint)"
)
TRANSCODER_LOCATION = params.StringParam(
    "TRANSCODER_LOCATION", default="us-central1", description="Transcoder API region"
)
TRANSCODER_ENDPOINT = params.StringParam(
    "TRANSCODER_ENDPOINT", default="", description="Transcoder API endpoint (empty: the public one)"
)
SIGNED_URL_HOURS = params.IntParam(
    "SIGNED_URL_HOURS", default=72, description="lifetime of the final video's signed URL (at most 168)"
)
MAX_ACTIVE_JOBS = params.IntParam("MAX_ACTIVE_JOBS", default=3, description="unfinished jobs allowed per user")
POLL_SECONDS = params.IntParam("POLL_SECONDS", default=10, description="seconds between polls of a Veo operation")
STITCH_POLL_BUDGET_SECONDS = params.IntParam(
    "STITCH_POLL_BUDGET_SECONDS", default=300, description="how long one poller invocation waits on a Transcoder job"
)
STITCH_MAX_POLL_ATTEMPTS = params.IntParam(
    "STITCH_MAX_POLL_ATTEMPTS", default=6, description="poller invocations before a stitch is declared timed out"
)
INNGEST_SERVE_ORIGIN = params.StringParam(
    "INNGEST_SERVE_ORIGIN",
    default="",
    description="the origin Inngest calls, e.g. https://REGION-PROJECT.cloudfunctions.net (empty: the request's)",
)
INNGEST_SERVE_PATH = params.StringParam(
    "INNGEST_SERVE_PATH", default="", description="the path Inngest calls, e.g. /inngest_api (empty: the request's)"
)

INNGEST_SIGNING_KEY = params.SecretParam("INNGEST_SIGNING_KEY")
INNGEST_EVENT_KEY = params.SecretParam("INNGEST_EVENT_KEY")
SECRETS = [INNGEST_SIGNING_KEY, INNGEST_EVENT_KEY]

# Read when the Inngest functions are declared (flow control is part of their definition).
# Inngest counts steps executing at once (a sleeping run holds no slot); the per-user limit also
# caps how many unchained segments of one job are in flight together.
USER_CONCURRENCY = int(os.environ.get("USER_CONCURRENCY", "2"))  # steps at once per user
MODEL_CONCURRENCY = int(os.environ.get("MODEL_CONCURRENCY", "10"))  # steps at once, all users: Veo's quota


@dataclass(frozen=True)
class CloudSettings:
    project: str
    bucket: str
    local_dir: Path | None
    video_model: str
    veo_model: str
    vertex_location: str
    vertex_base_url: str
    stitch_backend: str
    transcoder_location: str
    transcoder_endpoint: str
    signed_url_hours: int
    max_active_jobs: int
    poll_seconds: float
    stitch_poll_budget_seconds: float
    stitch_max_poll_attempts: int


def settings() -> CloudSettings:
    return CloudSettings(
        project=os.environ.get("GCLOUD_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT") or "demo-longform",
        bucket=BUCKET.value,
        local_dir=Path(LOCAL_DIR.value) if LOCAL_DIR.value else None,
        video_model=VIDEO_MODEL.value,
        veo_model=VEO_MODEL.value,
        vertex_location=VERTEX_LOCATION.value,
        vertex_base_url=VERTEX_BASE_URL.value,
        stitch_backend=STITCH_BACKEND.value,
        transcoder_location=TRANSCODER_LOCATION.value,
        transcoder_endpoint=TRANSCODER_ENDPOINT.value,
        signed_url_hours=SIGNED_URL_HOURS.value,
        max_active_jobs=MAX_ACTIVE_JOBS.value,
        poll_seconds=POLL_SECONDS.value,
        stitch_poll_budget_seconds=STITCH_POLL_BUDGET_SECONDS.value,
        stitch_max_poll_attempts=STITCH_MAX_POLL_ATTEMPTS.value,
    )
