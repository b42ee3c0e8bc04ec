"""The callables over HTTP, served by functions-framework from functions/main.py (the serving
path of production and of the Functions emulator), against the real Firestore emulator and a
stand-in for Inngest's Event API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.inngest_standin import InngestDevServer
from longform.adapters.firestore_job_store import FirestoreJobStore
from tests.cloud.callable_http import User, call, jobs_of, serving_callables

MAX_ACTIVE = 2
REQUESTED = "video/long_form.requested"
CANCELLED = "video/long_form.cancelled"


@pytest.fixture(scope="module")
def inngest_events() -> Iterator[InngestDevServer]:
    with InngestDevServer() as api:
        yield api


@pytest.fixture(autouse=True)
def _events_ok(inngest_events: InngestDevServer) -> None:
    inngest_events.fail_status = None


@pytest.fixture(scope="module")
def functions(
    firestore_emulator: Any, inngest_events: InngestDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    env = {"MAX_ACTIVE_JOBS": str(MAX_ACTIVE)}
    with serving_callables(firestore_emulator, inngest_events, tmp_path_factory.mktemp("logs"), env) as urls:
        yield urls


@pytest.fixture
def user(firestore_emulator: Any) -> User:
    return User(firestore_emulator.project)


def test_a_call_without_auth_is_unauthenticated_and_writes_nothing(
    functions: dict[str, str], inngest_events: InngestDevServer
) -> None:
    sent = len(inngest_events.events)
    status, body = call(functions["trigger_long_form_video_job"], {"prompts": ["a scene"]})
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert len(inngest_events.events) == sent


def test_an_anonymous_account_may_not_start_a_job(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer
) -> None:
    anonymous = User(firestore_emulator.project, provider="anonymous")
    status, body = call(functions["trigger_long_form_video_job"], {"prompts": ["a scene"]}, anonymous.token)
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert "sign in" in body["error"]["message"]
    assert jobs_of(firestore_emulator, anonymous.uid) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "prompts"),
        ("just a string", "request"),
        ({"prompts": []}, "prompts"),
        ({"prompts": ["ok", "   "]}, "prompts[1]"),
        ({"prompts": ["x" * 2001]}, "prompts[0]"),
        ({"prompts": ["ok"], "segmentSeconds": 5}, "segmentSeconds"),
        ({"prompts": ["ok"], "segmentSeconds": 4}, "segmentSeconds"),  # Veo 3 makes it; the Transcoder cannot join it
        ({"prompts": ["ok"], "aspectRatio": "1:1"}, "aspectRatio"),
        ({"prompts": ["ok"], "seed": True}, "seed"),
        ({"prompts": ["ok"], "chain": "yes"}, "chain"),
        ({"prompts": ["ok"], "requestId": "no spaces allowed"}, "requestId"),
        ({"prompts": ["ok"], "colour": "red"}, "colour"),
    ],
)
def test_an_invalid_request_is_invalid_argument_naming_the_field_and_writes_nothing(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer, user: User,
    data: Any, field: str,
) -> None:  # fmt: skip
    sent = len(inngest_events.events)
    status, body = call(functions["trigger_long_form_video_job"], data, user.token)
    assert status == 400
    error = body["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith(f"{field}: ")
    assert error["details"]["field"] == field and error["details"]["rule"]
    assert jobs_of(firestore_emulator, user.uid) == []
    assert len(inngest_events.events) == sent


def test_a_valid_request_queues_the_job_and_sends_exactly_one_event(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer, user: User
) -> None:
    status, body = call(
        functions["trigger_long_form_video_job"], {"prompts": ["dawn", "dusk"], "segmentSeconds": 6}, user.token
    )
    assert status == 200, body
    job_id = body["result"]["jobId"]
    assert body["result"]["status"] == "queued"

    doc = firestore_emulator.client().collection("videoJobs").document(job_id).get().to_dict()
    assert doc["status"] == "queued" and doc["progress"] == 0
    assert doc["userId"] == user.uid and doc["jobId"] == job_id
    assert doc["request"]["prompts"] == ["dawn", "dusk"] and doc["request"]["segmentSeconds"] == 6
    assert [s["prompt"] for s in doc["segments"]] == ["dawn", "dusk"]
    assert doc["timings"]["createdAt"]
    events = [e for e in inngest_events.named(REQUESTED) if e["data"]["jobId"] == job_id]
    assert len(events) == 1
    assert events[0]["id"] == job_id and events[0]["data"] == {"jobId": job_id, "userId": user.uid, "runKey": job_id}


def test_the_same_request_id_twice_gives_the_same_job_and_one_event(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer, user: User
) -> None:
    request = {"prompts": ["one scene"], "requestId": f"req-{uuid.uuid4().hex}"}
    first = call(functions["trigger_long_form_video_job"], request, user.token)
    second = call(functions["trigger_long_form_video_job"], request, user.token)
    assert first[0] == second[0] == 200
    assert first[1]["result"]["jobId"] == second[1]["result"]["jobId"]
    job_id = first[1]["result"]["jobId"]
    assert len([e for e in inngest_events.named(REQUESTED) if e["data"]["jobId"] == job_id]) == 1
    assert len(jobs_of(firestore_emulator, user.uid)) == 1


def test_a_user_over_the_active_job_limit_is_resource_exhausted(
    functions: dict[str, str], firestore_emulator: Any, user: User
) -> None:
    for n in range(MAX_ACTIVE):
        assert call(functions["trigger_long_form_video_job"], {"prompts": [f"scene {n}"]}, user.token)[0] == 200
    status, body = call(functions["trigger_long_form_video_job"], {"prompts": ["one too many"]}, user.token)
    assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert len(jobs_of(firestore_emulator, user.uid)) == MAX_ACTIVE


def test_a_job_over_the_daily_budget_is_resource_exhausted_saying_what_is_left(
    functions: dict[str, str], firestore_emulator: Any, user: User
) -> None:
    long_job = {"prompts": [f"scene {i}" for i in range(50)], "segmentSeconds": 8}  # 400 s of the default 600
    assert call(functions["trigger_long_form_video_job"], long_job, user.token)[0] == 200
    status, body = call(functions["trigger_long_form_video_job"], long_job, user.token)
    assert (status, body["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "this job needs 400 s and you have 200 s of 600 s a day left" in body["error"]["message"]
    assert body["error"]["details"] == {
        "scope": "user",
        "limitSeconds": 600,
        "remainingSeconds": 200,
        "requestedSeconds": 400,
    }
    assert len(jobs_of(firestore_emulator, user.uid)) == 1
    # An app's bigger plan, as a custom claim on the user's token, without redeploying:
    premium = User(firestore_emulator.project, videoSecondsPerDay=1000)
    for _ in range(2):
        assert call(functions["trigger_long_form_video_job"], long_job, premium.token)[0] == 200


def test_when_the_event_cannot_be_sent_no_job_is_left_queued(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer, user: User
) -> None:
    inngest_events.fail_status = 503
    status, body = call(functions["trigger_long_form_video_job"], {"prompts": ["a scene"]}, user.token)
    assert status == 503 and body["error"]["status"] == "UNAVAILABLE"
    (job,) = jobs_of(firestore_emulator, user.uid)
    assert job["status"] == "failed"
    assert job["error"].startswith("could not queue the job") and job["errorStep"] == "enqueue"


def test_the_owner_cancels_a_job_and_a_cancel_event_is_sent(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer, user: User
) -> None:
    job_id = call(functions["trigger_long_form_video_job"], {"prompts": ["a scene"]}, user.token)[1]["result"]["jobId"]
    status, body = call(functions["cancel_long_form_video_job"], {"jobId": job_id}, user.token)
    assert status == 200 and body["result"] == {"jobId": job_id, "status": "cancelled"}
    doc = firestore_emulator.client().collection("videoJobs").document(job_id).get().to_dict()
    assert doc["status"] == "cancelled" and doc["timings"]["cancelledAt"]
    assert [e["data"] for e in inngest_events.named(CANCELLED) if e["data"]["jobId"] == job_id] == [
        {"jobId": job_id, "userId": user.uid}
    ]


def test_only_the_owner_may_cancel_and_unknown_jobs_are_not_found(
    functions: dict[str, str], firestore_emulator: Any, user: User
) -> None:
    job_id = call(functions["trigger_long_form_video_job"], {"prompts": ["a scene"]}, user.token)[1]["result"]["jobId"]
    stranger = User(firestore_emulator.project)
    status, body = call(functions["cancel_long_form_video_job"], {"jobId": job_id}, stranger.token)
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"
    status, body = call(functions["cancel_long_form_video_job"], {"jobId": "no-such-job"}, user.token)
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    status, body = call(functions["cancel_long_form_video_job"], {"jobId": job_id})
    assert status == 401
    assert firestore_emulator.client().collection("videoJobs").document(job_id).get().to_dict()["status"] == "queued"


def test_only_the_owner_gets_playback_links_or_deletes_a_job(
    functions: dict[str, str], firestore_emulator: Any, user: User
) -> None:
    job_id = call(functions["trigger_long_form_video_job"], {"prompts": ["a", "b"]}, user.token)[1]["result"]["jobId"]
    stranger = User(firestore_emulator.project)
    for name in ("get_playback_urls", "delete_long_form_video_job"):
        status, body = call(functions[name], {"jobId": job_id}, stranger.token)
        assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED"), name
        status, body = call(functions[name], {"jobId": "../etc"}, user.token)
        assert (status, body["error"]["details"]["field"]) == (400, "jobId"), name

    status, body = call(functions["get_playback_urls"], {"jobId": job_id}, user.token)
    assert status == 200 and body["result"] == {
        "jobId": job_id,
        "version": 1,
        "videoUrl": None,  # nothing made yet
        "segments": [{"index": 0, "url": None}, {"index": 1, "url": None}],
    }
    status, body = call(functions["delete_long_form_video_job"], {"jobId": job_id}, user.token)
    assert status == 200 and body["result"] == {"jobId": job_id, "deleted": True}
    assert jobs_of(firestore_emulator, user.uid) == []
    status, body = call(functions["get_playback_urls"], {"jobId": job_id}, user.token)
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")


def test_the_owner_resumes_a_failed_job_in_place_with_a_run_of_its_own(
    functions: dict[str, str], firestore_emulator: Any, inngest_events: InngestDevServer, user: User
) -> None:
    job_id = call(functions["trigger_long_form_video_job"], {"prompts": ["a", "b"]}, user.token)[1]["result"]["jobId"]
    status, body = call(functions["resume_long_form_video_job"], {"jobId": job_id}, user.token)
    assert (status, body["error"]["status"]) == (400, "FAILED_PRECONDITION")  # queued: still running
    store = FirestoreJobStore(firestore_emulator.client())
    store.update(job_id, lambda j: j.fail("the model was down", "segment-0-start"))
    status, body = call(
        functions["resume_long_form_video_job"], {"jobId": job_id}, User(firestore_emulator.project).token
    )
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")

    status, body = call(functions["resume_long_form_video_job"], {"jobId": job_id}, user.token)

    assert status == 200 and body["result"] == {"jobId": job_id, "status": "generating"}
    job = store.get(job_id)
    assert [(r.error, r.error_step) for r in job.resumes] == [("the model was down", "segment-0-start")]
    resumed = [e for e in inngest_events.named(REQUESTED) if e["data"]["jobId"] == job_id]
    assert [(e["id"], e["data"]["runKey"]) for e in resumed] == [(job_id, job_id), (f"{job_id}-r1", f"{job_id}-r1")]
