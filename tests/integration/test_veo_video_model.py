"""VeoVideoModel through the real google-genai client (vertexai=True) against a local server that
speaks Vertex AI's Veo REST API (devtools/vertex_standin.py): the wire shapes, polling by name alone, and
how each failure maps to TransientError / PermanentError."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from google.genai import types
from google.oauth2.credentials import Credentials

from devtools.servers import free_port
from devtools.vertex_standin import FETCH, PREDICT, HttpFailure, Outcome, VertexStandIn
from longform.adapters.veo_video_model import VeoVideoModel, veo_client
from longform.errors import GenerationFailed, PermanentError, TransientError
from longform.ports import SegmentSpec

PROJECT, LOCATION, BUCKET = "demo-longform", "us-central1", "longform-bucket"
MODEL = "veo-3.1-fast-generate-001"
MODEL_NAME = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}"
# google-genai refreshes credentials that hold no token, and AnonymousCredentials cannot refresh.
TOKEN = Credentials(token="local-test-token")
SPEC = SegmentSpec(
    job_id="j",
    user_id="User-1",
    index=0,
    prompt="a red fox runs through snow",
    seconds=6,
    aspect_ratio="16:9",
    resolution="720p",
    generate_audio=True,
    output_key="jobs/j/segments/0.mp4",
    seed=7,
    negative_prompt="blur",
)


@pytest.fixture(autouse=True)
def _no_ambient_genai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads these from the environment; a developer's shell must not change the wire."""
    for name in (
        "GOOGLE_GENAI_API_VERSION",
        "GOOGLE_GENAI_HTTP_CLIENT",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_ENTERPRISE",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_USE_MTLS_ENDPOINT",
        "GOOGLE_API_USE_CLIENT_CERTIFICATE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def made() -> dict[str, dict[str, Any]]:
    """What the fake "rendered": output gs:// URI → the request that made it."""
    return {}


@pytest.fixture
def vertex(made: dict[str, dict[str, Any]]) -> Iterator[VertexStandIn]:
    with VertexStandIn(on_generate=lambda request, uri: made.__setitem__(uri, request)) as server:
        yield server


def veo(vertex: VertexStandIn, model: str = MODEL, bucket: str = BUCKET, **options: Any) -> VeoVideoModel:
    """A fresh client and adapter each time, as a new process (a resumed run) would build them."""
    return VeoVideoModel(veo_client(PROJECT, LOCATION, vertex.url, credentials=TOKEN, **options), model, bucket)


def poll_until_done(model: VeoVideoModel, name: str, limit: int = 5) -> str:
    for _ in range(limit):
        op = model.poll(name)
        if op.done:
            assert op.key is not None and op.name == name
            return op.key
    raise AssertionError(f"{name} not done after {limit} polls")


# -- start: the request Veo receives -------------------------------------------------------------


def test_start_sends_the_prompt_parameters_output_folder_and_labels(vertex: VertexStandIn) -> None:
    name = veo(vertex).start(SPEC)

    assert re.fullmatch(rf"{MODEL_NAME}/operations/[0-9a-f-]{{36}}", name)
    [request] = vertex.requests
    assert request.path == f"/v1beta1/{MODEL_NAME}:predictLongRunning"
    assert request.authorization == "Bearer local-test-token"
    assert request.body == {
        "instances": [{"prompt": "a red fox runs through snow"}],
        "parameters": {
            "sampleCount": 1,
            "storageUri": f"gs://{BUCKET}/jobs/j/segments/0/",
            "durationSeconds": 6,
            "seed": 7,
            "aspectRatio": "16:9",
            "resolution": "720p",
            "negativePrompt": "blur",
            "generateAudio": True,
        },
        "labels": {"jobid": "j", "userid": "user-1"},
    }


def test_a_chained_segment_starts_from_the_previous_last_frame(vertex: VertexStandIn) -> None:
    spec = replace(SPEC, index=1, output_key="jobs/j/segments/1.mp4", first_frame_key="jobs/j/frames/0.png")
    veo(vertex).start(spec)

    [body] = vertex.bodies(PREDICT)
    assert body["instances"] == [
        {
            "prompt": "a red fox runs through snow",
            "image": {"gcsUri": f"gs://{BUCKET}/jobs/j/frames/0.png", "mimeType": "image/png"},
        }
    ]
    assert body["parameters"]["storageUri"] == f"gs://{BUCKET}/jobs/j/segments/1/"


def test_unset_options_are_left_out_of_the_request(vertex: VertexStandIn) -> None:
    veo(vertex).start(replace(SPEC, seed=None, negative_prompt=None, generate_audio=False))

    [body] = vertex.bodies(PREDICT)
    assert "seed" not in body["parameters"] and "negativePrompt" not in body["parameters"]
    assert body["parameters"]["generateAudio"] is False


def test_veo_2_is_asked_for_neither_audio_nor_a_resolution(vertex: VertexStandIn) -> None:
    veo(vertex, model="veo-2.0-generate-001").start(replace(SPEC, seconds=5))

    [request] = vertex.requests
    assert request.path.endswith("/models/veo-2.0-generate-001:predictLongRunning")
    assert request.status == 200
    assert request.body["parameters"]["durationSeconds"] == 5
    assert "generateAudio" not in request.body["parameters"] and "resolution" not in request.body["parameters"]


def test_label_values_are_made_valid_and_long_ids_stay_distinct(vertex: VertexStandIn) -> None:
    long_id = "A" * 70
    model = veo(vertex)
    model.start(replace(SPEC, job_id=long_id + "1", user_id="Ünïcode.User@example.com"))
    model.start(replace(SPEC, job_id=long_id + "2"))

    first, second = (body["labels"] for body in vertex.bodies(PREDICT))
    assert first["userid"] == "_n_code_user_example_com"
    assert len(first["jobid"]) == len(second["jobid"]) == 63
    assert first["jobid"] != second["jobid"]
    assert all(r.status == 200 for r in vertex.requests)  # the fake refuses labels Vertex would refuse


# -- poll: by name alone --------------------------------------------------------------------------


def test_poll_reports_running_then_the_key_of_the_video_veo_wrote(
    vertex: VertexStandIn, made: dict[str, dict[str, Any]]
) -> None:
    vertex.script(Outcome.video(pending=2))
    model = veo(vertex)
    name = model.start(SPEC)

    assert [model.poll(name).done for _ in range(2)] == [False, False]
    op = model.poll(name)

    assert op.done and op.name == name
    assert op.key is not None and re.fullmatch(r"jobs/j/segments/0/\d+/sample_0\.mp4", op.key)
    assert made == {f"gs://{BUCKET}/{op.key}": vertex.bodies(PREDICT)[0]}
    fetches = [r for r in vertex.requests if r.call == FETCH]
    assert {r.path for r in fetches} == {f"/v1beta1/{MODEL_NAME}:fetchPredictOperation"}
    assert {r.body["operationName"] for r in fetches} == {name}


def test_a_resumed_run_polls_by_name_and_starts_nothing(vertex: VertexStandIn, made: dict[str, dict[str, Any]]) -> None:
    name = veo(vertex).start(SPEC)

    key = poll_until_done(veo(vertex), name)  # another client, another adapter: only the name survives

    assert len(vertex.generations) == 1 and len(vertex.bodies(PREDICT)) == 1
    assert list(made) == [f"gs://{BUCKET}/{key}"]


def test_polling_a_finished_operation_again_gives_the_same_key(
    vertex: VertexStandIn, made: dict[str, dict[str, Any]]
) -> None:
    model = veo(vertex)
    name = model.start(SPEC)
    key = poll_until_done(model, name)

    assert model.poll(name).key == key  # a replayed poll step
    assert len(made) == 1


def test_an_unknown_operation_is_permanent(vertex: VertexStandIn) -> None:
    with pytest.raises(PermanentError, match="404"):
        veo(vertex).poll(f"{MODEL_NAME}/operations/00000000-0000-0000-0000-000000000000")


# -- how a generation can end without a video ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "again"),
    [(3, False), (9, False), (4, True), (8, True), (10, True), (13, True), (14, True)],
)  # INVALID_ARGUMENT, FAILED_PRECONDITION; DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE
def test_an_operation_that_ended_in_error_says_whether_a_new_generation_may_succeed(
    vertex: VertexStandIn, code: int, again: bool
) -> None:
    vertex.script(Outcome.failed(code, "the model could not make this"))
    model = veo(vertex)
    name = model.start(SPEC)

    with pytest.raises(GenerationFailed, match=rf"code {code}\): the model could not make this") as caught:
        model.poll(name)
    assert caught.value.again is again
    with pytest.raises(GenerationFailed):  # the operation itself answers the same forever
        model.poll(name)


def test_a_video_blocked_by_the_safety_filters_is_permanent_and_says_why(
    vertex: VertexStandIn, made: dict[str, dict[str, Any]]
) -> None:
    reason = "Veo could not generate videos because the input image violates usage guidelines. Support codes: 1"
    vertex.script(Outcome.filtered(reason, "second reason"))
    model = veo(vertex)
    name = model.start(SPEC)

    with pytest.raises(PermanentError) as caught:
        model.poll(name)

    assert str(caught.value) == f"Veo's safety filters blocked the video: {reason}; second reason"
    assert made == {}


def test_a_video_returned_inline_is_refused(vertex: VertexStandIn) -> None:
    # Only a request without output_gcs_uri gets bytes back; the adapter never sends one, so use the SDK.
    client = veo_client(PROJECT, LOCATION, vertex.url, credentials=TOKEN)
    operation = client.models.generate_videos(model=MODEL, source=types.GenerateVideosSource(prompt="a fox"))
    assert operation.name
    model = veo(vertex)
    assert not model.poll(operation.name).done

    with pytest.raises(PermanentError, match="inline"):
        model.poll(operation.name)


def test_a_video_in_another_bucket_is_refused(vertex: VertexStandIn) -> None:
    name = veo(vertex, bucket="someone-elses-bucket").start(SPEC)
    model = veo(vertex)
    assert not model.poll(name).done

    with pytest.raises(PermanentError, match=f"outside gs://{BUCKET}: gs://someone-elses-bucket/"):
        model.poll(name)


# -- HTTP failures: what the step engine should retry ------------------------------------------


@pytest.mark.parametrize(
    ("failure", "retry_after"),
    [
        (HttpFailure(429, "Quota exceeded", retry_after="7"), 7.0),
        (HttpFailure(429, "Quota exceeded", retry_delay="2.5s"), 2.5),
        (HttpFailure(429, "Quota exceeded"), None),
        (HttpFailure(500, "Internal error"), None),
        (HttpFailure(503, "The service is unavailable", retry_after="3"), 3.0),
    ],
)
def test_quota_and_server_errors_on_start_are_transient_and_retrying_works(
    vertex: VertexStandIn, failure: HttpFailure, retry_after: float | None
) -> None:
    vertex.fail_next(PREDICT, failure)
    model = veo(vertex)

    with pytest.raises(TransientError, match=failure.message) as caught:
        model.start(SPEC)
    assert caught.value.retry_after == retry_after
    assert len(vertex.requests) == 1  # the SDK did not retry on its own
    assert vertex.generations == []

    name = model.start(SPEC)  # what the step engine does next

    assert [g.name for g in vertex.generations] == [name]


def test_a_retry_after_date_becomes_seconds_from_now(vertex: VertexStandIn) -> None:
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    vertex.fail_next(PREDICT, HttpFailure(503, retry_after=in_a_minute))

    with pytest.raises(TransientError) as caught:
        veo(vertex).start(SPEC)

    assert caught.value.retry_after == pytest.approx(60, abs=2)


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_quota_and_server_errors_on_poll_are_transient(vertex: VertexStandIn, status: int) -> None:
    model = veo(vertex)
    name = model.start(SPEC)
    vertex.fail_next(FETCH, HttpFailure(status))

    with pytest.raises(TransientError, match=str(status)):
        model.poll(name)
    assert len([r for r in vertex.requests if r.call == FETCH]) == 1

    assert poll_until_done(model, name)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_refusals_are_permanent(vertex: VertexStandIn, status: int) -> None:
    vertex.fail_next(PREDICT, HttpFailure(status, "refused"))

    with pytest.raises(PermanentError, match=f"{status} .*refused"):
        veo(vertex).start(SPEC)
    assert len(vertex.requests) == 1


def test_a_duration_the_model_does_not_take_is_permanent(vertex: VertexStandIn) -> None:
    with pytest.raises(PermanentError, match="400 INVALID_ARGUMENT durationSeconds 5"):
        veo(vertex).start(replace(SPEC, seconds=5))


def test_an_unreachable_endpoint_is_transient() -> None:
    client = veo_client(PROJECT, LOCATION, f"http://127.0.0.1:{free_port()}", credentials=TOKEN)

    with pytest.raises(TransientError, match="ConnectError"):
        VeoVideoModel(client, MODEL, BUCKET).start(SPEC)


def test_a_request_that_times_out_is_transient(vertex: VertexStandIn) -> None:
    vertex.fail_next(FETCH, HttpFailure(500, stall=1.0))
    model = veo(vertex, timeout_seconds=0.2)
    name = model.start(SPEC)

    with pytest.raises(TransientError, match="Timeout"):
        model.poll(name)
