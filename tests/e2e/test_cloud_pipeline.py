"""The workflow through the cloud adapters, each against a local server that speaks its API:
Veo (google-genai, vertexai=True) against the Vertex stand-in, which makes real MP4s with the
preview renderer and writes them into the Cloud Storage emulator; the jobs in the Firestore
emulator; the in-function PyAV stitch backend. The final video is downloaded and decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from devtools.cloud_standins import veo_renders_into
from devtools.media import probe
from devtools.vertex_standin import PREDICT, VertexStandIn
from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.adapters.gcs_blob_store import GcsBlobStore
from longform.adapters.pyav_checker import PyavMediaChecker
from longform.adapters.pyav_frames import PyavFrameExtractor
from longform.adapters.pyav_stitcher import PyavStitcher
from longform.adapters.sqlite import Database
from longform.adapters.veo_video_model import VeoVideoModel, veo_client
from longform.job import Job, SegmentStatus, Status
from longform.local_runner import LocalRunner, RetryPolicy
from longform.ports import final_key, frame_key
from longform.request import validate_request
from longform.workflow import Pipeline
from tests.conftest import PRICING

FPS = 24
MODEL = "veo-3.1-fast-generate-001"


@pytest.mark.slow
def test_a_chained_job_through_veo_cloud_storage_and_firestore_ends_in_a_real_video(
    storage_emulator: Any, firestore_emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = storage_emulator.bucket("longform")
    gcs = GcsBlobStore(storage_emulator.client(), bucket)
    jobs = FirestoreJobStore(firestore_emulator.client(), "videoJobs")
    prompts = ["A lighthouse at dawn", "The keeper climbs the stairs", "The lamp turns over the sea"]

    with VertexStandIn(on_generate=veo_renders_into(gcs)) as vertex:
        client = veo_client("demo-longform", "us-central1", vertex.url, credentials=Credentials(token="local"))
        model = VeoVideoModel(client, MODEL, bucket)
        pipeline = Pipeline(
            jobs,
            gcs,
            model,
            PyavFrameExtractor(gcs),
            PyavStitcher(gcs),
            PyavMediaChecker(gcs),
            PRICING,
            poll_seconds=0,
            poll_floor_seconds=0,  # the stand-in is quick
        )
        runner = LocalRunner(pipeline, Database(tmp_path / "steps.db"), RetryPolicy(3, 0.01))
        job = Job.new(validate_request({"prompts": prompts, "segmentSeconds": 4}), "cloud-user")
        jobs.create(job)
        done = runner.run(job.job_id)
        bodies = vertex.bodies(PREDICT)

    assert done.status is Status.COMPLETED, done.error
    assert done.progress == 100
    assert done.video_uri == f"gs://{bucket}/{final_key(job.job_id)}"
    assert [s.status for s in done.segments] == [SegmentStatus.COMPLETED] * 3
    assert all(s.uri and s.uri.startswith(f"gs://{bucket}/jobs/{job.job_id}/segments/") for s in done.segments)
    # chained: scenes 2 and 3 were asked to start from the previous scene's last frame
    images = [body["instances"][0].get("image", {}).get("gcsUri") for body in bodies]
    assert images == [None, *(f"gs://{bucket}/{frame_key(job.job_id, i)}" for i in range(2))]

    with gcs.local_path(final_key(job.job_id)) as video:
        info = probe(video)
    assert abs(info.frames - 3 * 4 * FPS) <= 2
    assert abs(info.duration - 12) <= 3 / FPS
    assert (info.width, info.height) == (1280, 720) and info.has_audio
    assert jobs.get(job.job_id) == done  # what the web client reads
    # the emulator's anonymous client cannot sign: the job keeps its gs:// URI, and says why in the log
    assert done.video_url is None
    assert "cannot sign" in caplog.text or "signed URL" in caplog.text
