"""The two callable transports answer alike: the same table of requests, in order, through the
deployed callables (functions-framework, Firestore emulator, Inngest Event API stand-in) and
through the local server (its Flask app over the embedded pipeline) gives the same HTTP status,
the same result and the same error — status, message and details.

Both serve one user ("local", the local server's only one) with the same limits: two unfinished
jobs, the preview renderer's lengths. Neither runs the jobs: the cloud's events only reach the
stand-in's Event API, and the local server's engine is replaced by one that records the starts,
so both sides' jobs stay queued and the answers can be compared whole."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from devtools.inngest_standin import InngestDevServer
from longform import bootstrap
from longform.config import Settings
from longform.job import Job
from longform.local_server import LocalBackend, create_app
from tests.cloud.callable_http import User, call, serving_callables

MAX_ACTIVE = 2
TRIGGER, CANCEL = "trigger_long_form_video_job", "cancel_long_form_video_job"
RUN = uuid.uuid4().hex[:8]  # request ids unique to this run: the emulator keeps its documents


class RecordingEngine:
    """Starts nothing; remembers what it was asked, as the Event API stand-in does."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []

    def start(self, job: Job) -> None:
        self.started.append(job.job_id)

    def cancel(self, job: Job) -> None:
        self.cancelled.append(job.job_id)


@pytest.fixture(scope="module")
def cloud(firestore_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = {"MAX_ACTIVE_JOBS": str(MAX_ACTIVE), "VIDEO_MODEL": "preview", "STITCH_BACKEND": "ffmpeg"}
    with (
        InngestDevServer() as events,
        serving_callables(firestore_emulator, events, tmp_path_factory.mktemp("logs"), env) as urls,
    ):
        yield urls


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    backend = LocalBackend(Settings(data_dir=Path(tmp_path_factory.mktemp("local"))), max_active_jobs=MAX_ACTIVE)
    backend.service.engine = RecordingEngine()
    return create_app(backend).test_client()


def ask_cloud(urls: dict[str, str], user: User, name: str, data: Any) -> tuple[int, dict[str, Any]]:
    return call(urls[name], data, user.token)


def ask_local(client: FlaskClient, name: str, data: Any) -> tuple[int, dict[str, Any]]:
    settings = Settings()
    response = client.post(f"/{settings.project}/{settings.region}/{name}", json={"data": data})
    return response.status_code, response.get_json()


def request(n: int, **fields: Any) -> dict[str, Any]:
    return {"prompts": [f"scene {n}"], "segmentSeconds": 4, "requestId": f"agree-{RUN}-{n}", **fields}


def without_stitch_price(answer: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """The answer, less the part of the estimate that depends on the stitch engine: this cloud
    stitches in the function (4 s scenes), the local mode prices the Transcoder's stitch."""
    status, body = answer
    cost = body.get("result", {}).get("cost")
    if cost is None:
        return answer
    scenes_only = {k: v for k, v in cost.items() if k not in ("stitch", "estimateUsd")}
    return status, {**body, "result": {**body["result"], "cost": scenes_only}}


# (callable, data, what the answer must be) — the rows run in order; state carries over.
TABLE: list[tuple[str, Any, str]] = [
    (TRIGGER, {}, "INVALID_ARGUMENT"),
    (TRIGGER, "just a string", "INVALID_ARGUMENT"),
    (TRIGGER, {"prompts": ["ok", " "], "segmentSeconds": 5, "colour": "red"}, "INVALID_ARGUMENT"),
    (TRIGGER, {"prompts": ["ok"], "seed": -1, "aspectRatio": "1:1"}, "INVALID_ARGUMENT"),
    (TRIGGER, request(1), "queued"),
    (TRIGGER, request(1), "queued"),  # the same requestId: the same job
    (TRIGGER, request(2, segmentSeconds=6), "queued"),
    (TRIGGER, request(3), "RESOURCE_EXHAUSTED"),  # two unfinished jobs already
    (CANCEL, {}, "INVALID_ARGUMENT"),
    (CANCEL, {"jobId": "../x"}, "INVALID_ARGUMENT"),
    (CANCEL, {"jobId": "no-such-job"}, "NOT_FOUND"),
    (CANCEL, "job-1", "INVALID_ARGUMENT"),
    (CANCEL, {"jobId": request(1)}, "cancel job 1"),
    (CANCEL, {"jobId": request(1)}, "cancel job 1"),  # already cancelled: unchanged
    (TRIGGER, request(3), "queued"),  # one unfinished job left: room again
]


def test_the_cloud_callables_and_the_local_server_answer_the_same_table_alike(
    cloud: dict[str, str], local: FlaskClient, firestore_emulator: Any
) -> None:
    user = User(firestore_emulator.project, uid=bootstrap.LOCAL_USER.user_id)
    job_ids: dict[str, str] = {}  # requestId → jobId, from the answers
    for name, data, expected in TABLE:
        if isinstance(data, dict) and isinstance(data.get("jobId"), dict):
            data = {"jobId": job_ids[data["jobId"]["requestId"]]}
        cloud_answer = ask_cloud(cloud, user, name, data)
        local_answer = ask_local(local, name, data)
        row = f"{name} {data!r}"
        assert without_stitch_price(cloud_answer) == without_stitch_price(local_answer), row
        status, body = cloud_answer
        if "result" in body:
            assert status == 200 and body["result"]["status"] in ("queued", "cancelled"), row
            if isinstance(data, dict) and "requestId" in data:
                job_ids[data["requestId"]] = body["result"]["jobId"]
            if expected.startswith("cancel"):
                assert body["result"]["status"] == "cancelled", row
        else:
            assert body["error"]["status"] == expected, row
    assert len(job_ids) == 3  # three jobs made on each side, with the same ids
