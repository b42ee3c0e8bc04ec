"""The Inngest endpoint as Inngest sees it: HTTP requests in the SDK's protocol to ``inngest_app.handle``,
behind a Flask app that forwards every path to it as Firebase's ``inngest_api`` does, with fakes
behind the ports. (The Inngest dev server cannot run here; ``drive`` plays its executor.)

Protocol: GET → introspection; PUT → sync; POST ``?fnId=<app>-<fn>&stepId=step`` with the run's
context, event and memoized steps → 206 with step ops to memoize before calling again, or 200
with the function's result, or 500 with the error (``x-inngest-no-retry: true`` when final).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient
from inngest._internal import net  # the SDK's own request signing, "for tests that mimic Inngest"
from werkzeug.test import TestResponse

from devtools import inngest_executor as executor
from devtools.inngest_executor import run_request, step_id
from devtools.inngest_standin import InngestDevServer
from longform.cloud import inngest_app
from longform.cloud.composition import Cloud
from longform.cloud.generate_long_form_video import RETRIES
from longform.cloud.inngest_client import JOB_REQUESTED, STITCH_REQUESTED
from longform.config import Settings
from longform.errors import PermanentError
from longform.job import SegmentStatus, Status
from longform.ports import final_key, segment_key
from tests.conftest import FakeWorld
from tests.fakes import FakeVideoModel, InMemoryBlobStore

GENERATE = "longform-generate_long_form_video"
STITCH = "longform-stitch_video"
SIGNING_KEY = "signkey-test-" + "5e" * 32
_INNGEST_ENV = (
    "INNGEST_DEV",
    "INNGEST_BASE_URL",
    "INNGEST_API_BASE_URL",
    "INNGEST_EVENT_API_BASE_URL",
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "INNGEST_EVENT_KEY",
    "INNGEST_ENV",
    "INNGEST_SERVE_ORIGIN",
    "INNGEST_SERVE_PATH",
)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FlaskClient]:
    """``serve(world, INNGEST_DEV="1", …)``: the endpoint of a composition made under exactly that
    environment, running against the world's fakes."""

    def make(world: FakeWorld | None = None, **env: str) -> FlaskClient:
        for name in _INNGEST_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        cloud = Cloud(Settings.from_env(), **({"pipeline": world.pipeline()} if world else {}))
        firebase = flask.Flask("firebase")  # what functions-framework does with main.inngest_api

        @firebase.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT"])
        @firebase.route("/<path:path>", methods=["GET", "POST", "PUT"])
        def inngest_api(path: str) -> flask.Response:
            return inngest_app.handle(flask.request, cloud)

        return firebase.test_client()

    return make


@pytest.fixture
def events() -> Iterator[InngestDevServer]:
    with InngestDevServer() as api:
        yield api


def post(http: FlaskClient, fn_id: str, body: dict[str, Any], step: str = "step", **headers: str) -> TestResponse:
    return http.post(f"/?fnId={fn_id}&stepId={step}", data=json.dumps(body), headers=headers)


def drive(http: FlaskClient, fn_id: str, event: dict[str, Any]) -> TestResponse:
    answers: list[TestResponse] = []

    def send(fn: str, body: dict[str, Any], step: str) -> tuple[int, Any]:
        answers.append(post(http, fn, body, step))
        return answers[-1].status_code, answers[-1].json

    executor.drive(send, fn_id, event)
    return answers[-1]


def requested(job_id: str) -> dict[str, Any]:
    return {"name": JOB_REQUESTED, "data": {"jobId": job_id, "userId": "user-1"}, "id": job_id, "ts": 1}


def test_introspection_in_dev_mode_counts_both_functions_and_needs_no_key(serve: Callable[..., FlaskClient]) -> None:
    res = serve(INNGEST_DEV="1").get("/")
    assert res.status_code == 200
    assert res.json is not None
    assert (res.json["function_count"], res.json["mode"], res.json["has_signing_key"]) == (2, "dev", False)


def test_in_cloud_mode_without_a_signing_key_requests_fail_but_imports_do_not(
    serve: Callable[..., FlaskClient],
) -> None:
    # The client and the functions exist (firebase deploy imports them with no secret); the SDK
    # refuses to serve unsigned, so the first request answers 500 and names the missing key.
    assert serve().get("/").status_code == 500


def test_sync_lists_both_functions_with_their_triggers_and_flow_control(serve: Callable[..., FlaskClient]) -> None:
    origin = "https://us-central1-demo-longform.cloudfunctions.net"
    http = serve(INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_SERVE_ORIGIN=origin, INNGEST_SERVE_PATH="/inngest_api")
    body = json.dumps({"url": f"{origin}/inngest_api"}).encode()
    signature = net.sign_request(body, SIGNING_KEY)
    assert isinstance(signature, str)
    res = http.put("/", data=body, headers={"X-Inngest-Signature": signature, "X-Inngest-Sync-Kind": "in_band"})

    assert res.status_code == 200, res.data
    assert res.json is not None
    fns = {f["id"]: f for f in res.json["functions"]}
    assert set(fns) == {GENERATE, f"{GENERATE}-failure", STITCH, f"{STITCH}-failure"}
    generate, stitch = fns[GENERATE], fns[STITCH]
    assert generate["triggers"] == [{"event": "video/long_form.requested"}]
    assert stitch["triggers"] == [{"event": "video/stitch.requested"}]
    cancel = [{"event": "video/long_form.cancelled", "if": "event.data.jobId == async.data.jobId"}]
    assert generate["cancel"] == stitch["cancel"] == cancel
    assert generate["idempotency"] == stitch["idempotency"] == "event.data.runKey"
    assert generate["concurrency"] == [
        {"key": "event.data.userId", "limit": Settings().user_concurrency},
        {"key": '"video-model"', "limit": Settings().model_concurrency, "scope": "env"},
    ]
    step = generate["steps"]["step"]
    assert step["retries"] == {"attempts": RETRIES}
    assert step["runtime"]["url"] == f"{origin}/inngest_api?fnId={GENERATE}&stepId=step"
    failure = fns[f"{GENERATE}-failure"]
    assert failure["triggers"] == [
        {"event": "inngest/function.failed", "expression": f"event.data.function_id == '{GENERATE}'"}
    ]


def test_a_step_request_runs_the_first_step_and_answers_with_its_op(
    serve: Callable[..., FlaskClient], world: FakeWorld
) -> None:
    http = serve(world, INNGEST_DEV="1")
    job_id = world.submit(2)

    res = post(http, GENERATE, run_request(requested(job_id), {}))

    assert res.status_code == 206, res.data
    assert res.json is not None
    [op] = res.json
    assert (op["op"], op["id"], op["displayName"]) == ("StepRun", step_id("start"), "start")
    assert op["data"]["userId"] == "user-1"
    assert op["data"]["request"]["prompts"] == ["scene 0", "scene 1"]
    assert world.jobs.get(job_id).status is Status.GENERATING
    assert world.model.started == []  # one step per request


def test_in_cloud_mode_only_signed_requests_run_steps(serve: Callable[..., FlaskClient], world: FakeWorld) -> None:
    http = serve(world, INNGEST_SIGNING_KEY=SIGNING_KEY)
    job_id = world.submit(1)
    body = run_request(requested(job_id), {})

    assert post(http, GENERATE, body).status_code == 401
    assert world.jobs.get(job_id).status is Status.QUEUED

    signature = net.sign_request(json.dumps(body).encode(), SIGNING_KEY)
    assert isinstance(signature, str)
    res = post(http, GENERATE, body, **{"X-Inngest-Signature": signature})
    assert res.status_code == 206, res.data
    assert "X-Inngest-Signature" in res.headers  # Inngest checks our answer too
    assert world.jobs.get(job_id).status is Status.GENERATING


def test_whole_runs_through_the_endpoint_generate_then_stitch(
    serve: Callable[..., FlaskClient],
    make_world: Callable[..., FakeWorld],
    events: InngestDevServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STITCH_BACKEND", "ffmpeg")
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=1))
    http = serve(world, INNGEST_DEV=events.url)  # the SDK sends events to the dev server's Event API
    job_id = world.submit(3, chain=False)  # parallel steps: planned, then run one by one

    res = drive(http, GENERATE, requested(job_id))

    assert res.status_code == 200, res.data
    keys = [segment_key(job_id, i) for i in range(3)]
    assert res.json == {"jobId": job_id, "segmentKeys": keys}
    [stitch] = events.named(STITCH_REQUESTED)
    assert (stitch["id"], stitch["data"]) == (
        f"{job_id}-stitch",
        {"jobId": job_id, "userId": "user-1", "segmentKeys": keys, "runKey": job_id},
    )

    res = drive(http, STITCH, stitch)

    assert res.status_code == 200, res.data
    job = world.jobs.get(job_id)
    assert (job.status, job.progress, job.video_uri) == (Status.COMPLETED, 100, f"mem://{final_key(job_id)}")
    assert [s.attempts for s in job.segments] == [1, 1, 1]


def test_a_permanent_failure_answers_no_retry_and_on_failure_marks_the_job(
    serve: Callable[..., FlaskClient], make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    model = FakeVideoModel(blobs, failures={1: [PermanentError("the prompt was blocked")]})
    world = make_world(blobs=blobs, model=model)
    http = serve(world, INNGEST_DEV="1")
    job_id = world.submit(3)
    event = requested(job_id)

    res = drive(http, GENERATE, event)

    assert res.status_code == 500
    assert res.headers["x-inngest-no-retry"] == "true"
    assert res.json is not None
    assert (res.json["name"], res.json["message"]) == ("NonRetriableError", "[segment-1-start] the prompt was blocked")
    assert model.started_indexes() == [0, 1]

    # Inngest then sends inngest/function.failed to the failure function it synced.
    failed = {
        "name": "inngest/function.failed",
        "data": {"error": res.json, "event": event, "function_id": GENERATE, "run_id": "01JRUN"},
        "id": "01JFAILED",
        "ts": 2,
    }
    res = post(http, f"{GENERATE}-failure", run_request(failed, {}))

    assert res.status_code == 200, res.data
    job = world.jobs.get(job_id)
    assert (job.status, job.error, job.error_step) == (Status.FAILED, "the prompt was blocked", "segment-1-start")
    assert job.segments[1].status is SegmentStatus.FAILED
