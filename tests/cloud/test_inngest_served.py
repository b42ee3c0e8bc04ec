"""``inngest_api`` as deployed: functions/main.py served by functions-framework, driven over HTTP
by the executor stand-in, against the Firestore emulator — the embedded renderer and the PyAV
stitcher behind it, so a whole job ends in a real MP4."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.inngest_executor import drive, run_request, step_id
from devtools.inngest_standin import InngestDevServer
from devtools.media import probe
from devtools.servers import functions_framework
from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.job import Job, SegmentStatus, Status
from longform.ports import final_key
from longform.request import validate_request

GENERATE = "longform-generate_long_form_video"
STITCH = "longform-stitch_video"


class Endpoint:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self) -> tuple[int, Any]:
        with urllib.request.urlopen(self.url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())

    def post(self, fn_id: str, body: dict[str, Any], step: str = "step") -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{self.url}?fnId={fn_id}&stepId={step}",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def served(
    firestore_emulator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Endpoint, InngestDevServer, Path]]:
    files = tmp_path_factory.mktemp("bucket")
    with InngestDevServer() as events:
        env = {
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
            "GCLOUD_PROJECT": firestore_emulator.project,
            "INNGEST_DEV": events.url,
            "VIDEO_MODEL": "preview",
            "STITCH_BACKEND": "ffmpeg",
            "LONGFORM_LOCAL_DIR": str(files),
            "POLL_SECONDS": "0",
        }
        with functions_framework("inngest_api", env, tmp_path_factory.mktemp("logs")) as server:
            yield Endpoint(f"http://127.0.0.1:{server.port}/"), events, files


def queued_job(firestore_emulator: Any, prompts: list[str]) -> tuple[FirestoreJobStore, Job]:
    jobs = FirestoreJobStore(firestore_emulator.client(), "videoJobs")
    job = Job.new(validate_request({"prompts": prompts, "segmentSeconds": 4}), "served-user")
    jobs.create(job)
    return jobs, job


def requested(job: Job) -> dict[str, Any]:
    data = {"jobId": job.job_id, "userId": job.user_id}
    return {"name": "video/long_form.requested", "data": data, "id": job.job_id, "ts": 1}


def test_introspection_counts_both_functions(served: tuple[Endpoint, InngestDevServer, Path]) -> None:
    endpoint, _, _ = served
    status, body = endpoint.get()
    assert status == 200 and body["function_count"] == 2 and body["mode"] == "dev"


def test_a_step_request_runs_the_step_against_firestore_and_answers_its_op(
    served: tuple[Endpoint, InngestDevServer, Path], firestore_emulator: Any
) -> None:
    endpoint, _, _ = served
    jobs, job = queued_job(firestore_emulator, ["a lone scene"])
    status, ops = endpoint.post(GENERATE, run_request(requested(job), {}))
    assert status == 206, ops
    [op] = ops
    assert (op["op"], op["id"], op["displayName"]) == ("StepRun", step_id("start"), "start")
    assert op["data"]["userId"] == "served-user"
    assert jobs.get(job.job_id).status is Status.GENERATING


@pytest.mark.slow
def test_a_whole_job_runs_through_the_served_endpoint_into_a_real_video(
    served: tuple[Endpoint, InngestDevServer, Path], firestore_emulator: Any
) -> None:
    endpoint, events, files = served
    jobs, job = queued_job(firestore_emulator, ["a harbour at dawn", "boats leave the harbour"])

    status, result = drive(endpoint.post, GENERATE, requested(job))
    assert status == 200, result
    [stitch] = [e for e in events.named("video/stitch.requested") if e["data"]["jobId"] == job.job_id]
    assert jobs.get(job.job_id).status is Status.GENERATING
    status, result = drive(endpoint.post, STITCH, stitch)
    assert status == 200, result

    done = jobs.get(job.job_id)
    assert (done.status, done.progress) == (Status.COMPLETED, 100)
    assert [s.status for s in done.segments] == [SegmentStatus.COMPLETED] * 2
    assert [s.attempts for s in done.segments] == [1, 1]
    video = files / final_key(job.job_id)
    assert done.video_uri == video.as_uri()
    info = probe(video)
    assert abs(info.frames - 2 * 4 * 24) <= 1 and info.has_audio
