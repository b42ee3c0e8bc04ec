"""The local server's protocol, through Flask's test client over the real embedded pipeline: the
callable wire format and error codes, idempotency, the job event stream, files with Range."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from longform import bootstrap
from longform.adapters.preview_video_model import PreviewVideoModel
from longform.config import Settings
from longform.job import Job
from longform.local_server import LocalBackend, create_app
from longform.ports import BlobStore, Operation, SegmentSpec
from longform.request import validate_request

TRIGGER = "/demo-longform/us-central1/trigger_long_form_video_job"
CANCEL = "/demo-longform/us-central1/cancel_long_form_video_job"
REQUEST = {"prompts": ["a red fox", "a blue sea"], "segmentSeconds": 4, "generateAudio": False}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    backend = LocalBackend(Settings(data_dir=tmp_path / "data"))
    return create_app(backend).test_client()


def events(client: FlaskClient, job_id: str) -> list[dict[str, Any]]:
    """Every job event the stream sends, up to its end (it ends when the job is final)."""
    response = client.get(f"/__/longform/jobs/{job_id}/events", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    text = b"".join(response.response).decode()  # type: ignore[arg-type]
    return [json.loads(line.removeprefix("data: ")) for line in text.splitlines() if line.startswith("data: ")]


def test_invalid_request_answers_400_naming_the_field(client: FlaskClient) -> None:
    response = client.post(TRIGGER, json={"data": {"prompts": ["ok", "  "], "segmentSeconds": 5}})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"]["field"] == "prompts[1]"
    assert {"field": "segmentSeconds", "rule": "must be one of 4, 6 or 8"} in error["details"]["problems"]
    assert client.get("/__/longform/jobs").get_json() == {"jobs": []}  # nothing was written


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/other-project/us-central1/trigger_long_form_video_job", {"data": REQUEST}, 404, "NOT_FOUND"),
        ("/demo-longform/us-central1/no_such_function", {"data": {}}, 404, "NOT_FOUND"),
        (TRIGGER, {"prompts": ["no data wrapper"]}, 400, "INVALID_ARGUMENT"),
        (CANCEL, {"data": {"jobId": "../x"}}, 400, "INVALID_ARGUMENT"),
        (CANCEL, {"data": {"jobId": "nosuchjob"}}, 404, "NOT_FOUND"),
    ],
)
def test_errors_use_the_callable_protocol(
    client: FlaskClient, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status
    assert response.get_json()["error"]["status"] == code


@pytest.mark.slow
def test_a_job_streams_every_state_until_completed_and_its_files_are_served(client: FlaskClient) -> None:
    result = client.post(TRIGGER, json={"data": {**REQUEST, "requestId": "req-1"}}).get_json()["result"]
    job_id = result["jobId"]
    again = client.post(TRIGGER, json={"data": {**REQUEST, "requestId": "req-1"}}).get_json()["result"]
    assert again["jobId"] == job_id  # the same requestId gets the same job

    seen = events(client, job_id)
    statuses = [e["status"] for e in seen]
    assert statuses[-1] == "completed" and "stitching" in statuses
    progress = [e["progress"] for e in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    final = seen[-1]
    assert final["videoUrl"] == f"/__/longform/files/jobs/{job_id}/final/video.mp4"
    assert [s["url"] for s in final["segments"]] == [
        f"/__/longform/files/jobs/{job_id}/segments/{i}.mp4" for i in range(2)
    ]
    # A finished job: one snapshot, then the stream ends. The same job, but for the runner's lease,
    # which it may give back (a write of its own) after the job completed.
    [snapshot] = events(client, job_id)
    assert without_lease(snapshot) == without_lease(final)

    whole = client.get(final["videoUrl"])
    assert whole.status_code == 200 and whole.mimetype == "video/mp4"
    part = client.get(final["videoUrl"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.data)}"
    assert part.data == whole.data[100:200]

    assert client.post(CANCEL, json={"data": {"jobId": job_id}}).get_json()["result"]["status"] == "completed"
    play = client.post("/demo-longform/us-central1/get_playback_urls", json={"data": {"jobId": job_id}})
    assert play.get_json()["result"] == {
        "jobId": job_id,
        "version": 1,
        "videoUrl": final["videoUrl"],
        "segments": [{"index": i, "url": s["url"]} for i, s in enumerate(final["segments"])],
    }
    usage = client.get("/__/longform/usage").get_json()
    assert (usage["usedSeconds"], usage["limitSeconds"]) == (8, 86_400)  # two 4 s scenes, the local default
    listed = client.get("/__/longform/jobs").get_json()["jobs"]
    assert [j["jobId"] for j in listed] == [job_id]


def without_lease(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in ("lease", "updatedAt")}


@pytest.mark.parametrize("key", ["../longform.db", "jobs/../../longform.db", "jobs/x/final/none.mp4", "longform.db"])
def test_files_outside_the_blob_folder_or_missing_are_not_found(client: FlaskClient, key: str) -> None:
    assert client.get(f"/__/longform/files/{key}").status_code == 404


def test_the_page_and_its_config_are_served(client: FlaskClient) -> None:
    assert client.get("/__/longform/config.json").get_json()["mode"] == "local"
    page = client.get("/")
    assert page.status_code == 200 and b'id="director"' in page.data
    assert client.get("/app.js").mimetype == "text/javascript"


@pytest.mark.slow
def test_a_deleted_job_and_its_files_are_gone(client: FlaskClient, tmp_path: Path) -> None:
    job_id = client.post(TRIGGER, json={"data": REQUEST}).get_json()["result"]["jobId"]
    assert events(client, job_id)[-1]["status"] == "completed"
    assert (tmp_path / "data" / "blobs" / "jobs" / job_id).is_dir()
    answer = client.post("/demo-longform/us-central1/delete_long_form_video_job", json={"data": {"jobId": job_id}})
    assert answer.get_json() == {"result": {"jobId": job_id, "deleted": True}}
    assert client.get("/__/longform/jobs").get_json() == {"jobs": []}
    assert list((tmp_path / "data" / "blobs").rglob("*.mp4")) == []


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "10.0.0.5:8765"])
def test_requests_addressed_to_another_host_name_are_refused(client: FlaskClient, host: str) -> None:
    # DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example.
    for answer in (client.get("/__/longform/jobs", headers={"Host": host}), client.get("/", headers={"Host": host})):
        assert answer.status_code == 403
    refused = client.post(TRIGGER, json={"data": REQUEST}, headers={"Host": host})
    assert refused.status_code == 403 and refused.get_json()["error"]["status"] == "PERMISSION_DENIED"
    assert client.get("/__/longform/jobs").get_json() == {"jobs": []}
    for ok in ("127.0.0.1:8765", "localhost:8765", "localhost", "[::1]:8765"):
        assert client.get("/__/longform/jobs", headers={"Host": ok}).status_code == 200


class HeldModel:
    """The preview renderer, each start held until ``release`` is set."""

    release = threading.Event()

    def __init__(self, blobs: BlobStore) -> None:
        self.inner = PreviewVideoModel(blobs)

    def start(self, spec: SegmentSpec) -> str:
        assert self.release.wait(60)
        return self.inner.start(spec)

    def poll(self, operation: str) -> Operation:
        return self.inner.poll(operation)


@pytest.mark.slow
def test_jobs_beyond_the_running_limit_wait_queued_then_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_running_jobs=1)
    backend = LocalBackend(settings, HeldModel)
    client = create_app(backend).test_client()
    ids = [
        client.post(TRIGGER, json={"data": {**REQUEST, "prompts": [f"scene {n}"]}}).get_json()["result"]["jobId"]
        for n in range(3)
    ]
    deadline = time.monotonic() + 10
    while backend.job(ids[0]).status != "generating" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [backend.job(i).status for i in ids] == ["generating", "queued", "queued"]
    assert backend.local.engine.workers == 1  # one worker, not a thread a job
    HeldModel.release.set()
    assert [events(client, i)[-1]["status"] for i in ids] == ["completed"] * 3


@pytest.mark.slow
def test_the_server_resumes_the_jobs_left_unfinished_when_it_starts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    earlier = bootstrap.local(settings)
    job = Job.new(validate_request({**REQUEST, "prompts": ["left behind"]}), bootstrap.LOCAL_USER.user_id)
    earlier.pipeline.jobs.create(job)  # as a killed server leaves it: unfinished, nobody's lease

    backend = LocalBackend(settings)
    assert backend.resume_interrupted() == [job.job_id]
    client = create_app(backend).test_client()
    assert events(client, job.job_id)[-1]["status"] == "completed"
