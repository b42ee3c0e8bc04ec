"""Longform as deployed, whole, on the Firebase emulator suite: a user of the Auth emulator calls
``trigger_long_form_video_job`` on the Functions emulator; the Inngest stand-in runs the job
through ``inngest_api``; Veo (its stand-in) renders real segments into the Cloud Storage
emulator; the Transcoder stand-in joins them and, with the Pub/Sub emulator, announces the end of
its job, which ``settle_transcoder_job`` receives and completes the job on (``poll_transcoder_job``
fires on the Firestore emulator too, and waits behind it; without the Pub/Sub emulator it completes
the job). Each test watches its job document with a Firestore listener."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import inngest
import pytest
from google.cloud import firestore
from google.cloud.firestore_v1 import FieldFilter
from google.oauth2 import service_account

from devtools.emulator_suite import BUCKET, PROJECT, REGION, TOPIC, EmulatorSuite
from devtools.media import probe
from devtools.vertex_standin import PREDICT, HttpFailure, Outcome
from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.adapters.transcoder_stitcher import TranscoderStitcher, transcoder_client
from longform.cloud.composition import Cloud
from longform.cloud.inngest_client import APP_ID
from longform.config import Settings
from longform.job import Job, SegmentStatus, Status, idempotent_job_id
from longform.ports import StitchSpec, final_key
from longform.prices import PRICES
from longform.request import validate_request
from tests.conftest import unavailable
from tests.emulators.conftest import SAFETY_NET_SECONDS

pytestmark = pytest.mark.slow

PROMPTS = ["A lighthouse at dawn", "The keeper climbs the stairs", "The lamp turns over the sea"]
SECONDS, FPS = 6, 24
GENERATE, STITCH = "longform-generate_long_form_video", "longform-stitch_video"
# A three-scene job of SECONDS-long scenes with audio, by the price table's own numbers.
SCENES_USD = len(PROMPTS) * SECONDS * PRICES.veo["veo-3.1-fast-generate-001"].with_audio
STITCH_USD = len(PROMPTS) * SECONDS / 60 * PRICES.transcoder.hd
ESTIMATE = SCENES_USD + STITCH_USD
JOB_TIMEOUT = 120.0
PASSWORD = "correct horse"


# -- helpers ----------------------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def with_claims(suite: EmulatorSuite, uid: str, email: str, **claims: object) -> str:
    """Set custom claims on a user (as the Admin SDK's set_custom_user_claims does) and sign in
    again: the new ID token carries them."""
    update = f"{suite.auth_url}/identitytoolkit.googleapis.com/v1/projects/{PROJECT}/accounts:update"
    status, body = _post(update, {"localId": uid, "customAttributes": json.dumps(claims)}, "owner")
    assert status == 200, body
    sign_in = f"{suite.auth_url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any"
    status, body = _post(sign_in, {"email": email, "password": PASSWORD, "returnSecureToken": True})
    assert status == 200, body
    return str(body["idToken"])


def answer(suite: EmulatorSuite, function: str, data: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    """A callable's HTTP status and body, error or not."""
    status, body = _post(suite.function_url(function), {"data": data}, token)
    return status, body


def sign_up(suite: EmulatorSuite, anonymous: bool = False) -> tuple[str, str]:
    """A new user of the Auth emulator, with email and password (or anonymous): (uid, ID token)."""
    url = f"{suite.auth_url}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any"
    account = {} if anonymous else {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD}
    status, body = _post(url, {**account, "returnSecureToken": True})
    assert status == 200, body
    return body["localId"], body["idToken"]


def call(suite: EmulatorSuite, function: str, data: dict[str, Any], token: str) -> dict[str, Any]:
    """Call a callable as ``httpsCallable`` does; its result."""
    status, body = _post(suite.function_url(function), {"data": data}, token)
    assert status == 200, body
    result: dict[str, Any] = body["result"]
    return result


class JobWatch:
    """Every snapshot of one job document, as a Firestore listener delivers them."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def on_snapshot(self, docs: list[Any], changes: object, read_time: object) -> None:
        with self._changed:
            self.seen += [doc.to_dict() for doc in docs if doc.exists]
            self._changed.notify_all()

    def wait_for(self, done: Callable[[dict[str, Any]], bool], timeout: float = JOB_TIMEOUT) -> Job:
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self.seen) and done(self.seen[-1]), timeout):
                last = self.seen[-1] if self.seen else None
                raise AssertionError(f"not there after {timeout}s; last snapshot: {last}")
            return Job.from_json(self.seen[-1])

    def statuses(self) -> list[str]:
        with self._changed:
            return [
                s for i, s in enumerate(d["status"] for d in self.seen) if i == 0 or self.seen[i - 1]["status"] != s
            ]

    def first(self) -> dict[str, Any]:
        with self._changed:
            return self.seen[0]

    def progresses(self) -> list[int]:
        with self._changed:
            return [d["progress"] for d in self.seen]


@pytest.fixture
def db(suite: EmulatorSuite) -> firestore.Client:
    with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": suite.firestore_host}):
        return firestore.Client(project=PROJECT)


@contextmanager
def watching(db: firestore.Client, job_id: str) -> Iterator[JobWatch]:
    watch = JobWatch()
    listener = db.collection("videoJobs").document(job_id).on_snapshot(watch.on_snapshot)
    try:
        yield watch
    finally:
        listener.unsubscribe()


@contextmanager
def start_job(suite: EmulatorSuite, db: firestore.Client, request_id: str) -> Iterator[tuple[str, str, str, JobWatch]]:
    """Sign a user up, start watching the job its request will make, then make the request."""
    uid, token = sign_up(suite)
    job_id = idempotent_job_id(uid, request_id)  # known before the call: the listener sees "queued"
    with watching(db, job_id) as watch:
        data = {"prompts": PROMPTS, "segmentSeconds": SECONDS, "chain": True, "requestId": request_id}
        answer = call(suite, "trigger_long_form_video_job", data, token)
        assert (answer["jobId"], answer["status"]) == (job_id, "queued")
        assert answer["cost"]["estimateUsd"] == pytest.approx(ESTIMATE)
        yield uid, token, job_id, watch


def generations_of(suite: EmulatorSuite, job_id: str) -> list[dict[str, Any]]:
    assert suite.standins is not None
    return [g.request for g in suite.standins.vertex.generations if g.request["labels"]["jobid"] == job_id]


def asked_of_veo(suite: EmulatorSuite, job_id: str, generations: int = 1) -> None:
    """Wait until Veo was asked for the job's scene: a scene is begun (its status "generating"),
    then, in the same step, a moment later, asked of the model."""
    deadline = time.monotonic() + 30
    while len(generations_of(suite, job_id)) < generations and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(generations_of(suite, job_id)) == generations


def ledger(db: firestore.Client, uid: str) -> dict[str, Any]:
    """The user's usage document for today (UTC), as a client reads it."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return db.collection("usage").document(uid).collection("days").document(day).get().to_dict() or {}


def finished(doc: dict[str, Any]) -> bool:
    return Status(doc["status"]).is_final


# -- the job, end to end ----------------------------------------------------------------------------


def test_a_signed_in_users_chained_job_runs_through_the_emulators_into_a_real_video(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    with start_job(suite, db, "happy-path") as (uid, _, job_id, watch):
        job = watch.wait_for(finished)

    assert job.status is Status.COMPLETED, job.error
    assert watch.statuses() == ["queued", "generating", "stitching", "completed"]
    # what it costs: estimated before it ran, spent when it completed (Veo 3.1 Fast, Transcoder HD)
    assert watch.first()["status"] == "queued" and watch.first()["cost"]["estimateUsd"] == pytest.approx(ESTIMATE)
    assert job.cost is not None and not job.cost.estimated
    assert (job.cost.scenes_usd, job.cost.stitch_usd) == pytest.approx((SCENES_USD, STITCH_USD))
    assert job.cost.total_usd == pytest.approx(ESTIMATE)
    # the user's ledger for the day: what was generated and spent, and how the job ended
    usage = ledger(db, uid)
    assert (usage["jobs"], usage["completed"], usage["generatedSeconds"]) == (1, 1, len(PROMPTS) * SECONDS)
    assert usage["spentUsd"] == pytest.approx(ESTIMATE) and "failed" not in usage and "quotaHits" not in usage
    progress = watch.progresses()
    assert progress == sorted(progress) and progress[-1] == 100 and job.progress == 100

    # the segments: each made once, chained from the previous one's last frame
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED] * 3
    assert [s.attempts for s in job.segments] == [1, 1, 1]
    assert all(s.started_at and s.completed_at and s.started_at <= s.completed_at for s in job.segments)
    assert all(s.uri and s.uri.startswith(f"gs://{BUCKET}/jobs/{job_id}/segments/") for s in job.segments)
    images = [g["instances"][0].get("image", {}).get("gcsUri") for g in generations_of(suite, job_id)]
    assert images[0] is None and all(f"/jobs/{job_id}/frames/" in (uri or "") for uri in images[1:])
    assert len(images) == 3
    for name in ("createdAt", "startedAt", "stitchStartedAt", "completedAt"):
        assert job.timings.get(name), f"timings.{name} missing: {job.timings}"
    assert job.timings["createdAt"] <= job.timings["startedAt"] <= job.timings["completedAt"]

    # the final file, made by the Transcoder stand-in in the Storage emulator, decodes whole
    assert job.video_uri == f"gs://{BUCKET}/jobs/{job_id}/final/video.mp4"
    with suite.standins.gcs.local_path(suite.standins.gcs.key_of(job.video_uri)) as video:
        info = probe(video)
    assert abs(info.frames - len(PROMPTS) * SECONDS * FPS) <= 2
    assert (info.width, info.height) == (1280, 720)

    # Veo was called with Application Default Credentials: tokens from the token stand-in
    tokens = {f"Bearer {t}" for t in suite.standins.oauth.issued}
    assert tokens and {r.authorization for r in suite.standins.vertex.requests} <= tokens
    # the Inngest runs: one of each function, both ended well
    runs = suite.standins.inngest.runs_of(GENERATE, job_id) + suite.standins.inngest.runs_of(STITCH, job_id)
    assert [(r.fn_id, r.status) for r in runs] == [(GENERATE, "Completed"), (STITCH, "Completed")]

    # the functions' JSON log lines carry the job and its user
    lines = [
        json.loads(line[line.index("{") :]) for line in suite.firebase_log().splitlines() if line.startswith(">  {")
    ]
    mine = [entry for entry in lines if entry.get("jobId") == job_id]
    assert mine and all(entry.get("userId") == uid for entry in mine)
    # from the callable's side (it hands over to the service) and from the poller
    assert {"longform.service", "longform.cloud.stitch_poller"} <= {entry["logger"] for entry in mine}
    # the lines the log-based metrics count (monitoring/log-metrics): three scenes made, one job ended
    events = [entry["event"] for entry in mine if "event" in entry]
    assert sorted(events) == ["job_finished"] + ["scene_completed"] * 3


def function_lines(suite: EmulatorSuite, job_id: str) -> list[dict[str, Any]]:
    """The functions' JSON log lines about the job, as the Functions emulator printed them."""
    lines = [
        json.loads(line[line.index("{") :]) for line in suite.firebase_log().splitlines() if line.startswith(">  {")
    ]
    return [entry for entry in lines if entry.get("jobId") == job_id]


def test_the_transcoders_pubsub_notice_completes_the_job_within_seconds_with_no_poll(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    if suite.pubsub is None:
        unavailable(f"the Transcoder's Pub/Sub notice on the emulators: {suite.pubsub_note}")
    assert suite.standins is not None
    transcoder = suite.standins.transcoder
    with start_job(suite, db, "pubsub-notice") as (uid, _, job_id, watch):
        job = watch.wait_for(finished)
    assert job.status is Status.COMPLETED, job.error
    assert job.stitch_job is not None

    # The Transcoder stand-in ended the job by itself and announced it as the service does
    name = job.stitch_job
    [config] = [j["config"] for n, j in transcoder.jobs.items() if n == name]
    assert config["pubsubDestination"] == {"topic": f"projects/{PROJECT}/topics/{TOPIC}"}
    assert [m for t, m in transcoder.published if m["job"]["name"] == name] == [
        {"job": {"name": name, "state": "SUCCEEDED"}}
    ]
    assert transcoder.publish_errors == []

    # ... and the job was completed a moment later: by the notice, since the poller polls no sooner
    # than SAFETY_NET_SECONDS after the stitch started
    completed = datetime.fromisoformat(job.timings["completedAt"]).timestamp()
    stitch_started = datetime.fromisoformat(job.timings["stitchStartedAt"]).timestamp()
    latency = completed - transcoder.finished_at[name]
    # 0.1 s measured here on a warm worker, 1.3 s when the test runs alone (the worker's cold start)
    assert 0 <= latency < 5, f"completed {latency:.2f} s after the Transcoder job ended"
    assert completed - stitch_started < SAFETY_NET_SECONDS
    gets = [path for method, path in transcoder.requests if method == "GET" and path == f"/v1/{name}"]
    assert len(gets) == 1  # the notice's check with the Transcoder: no poll was needed
    assert job.cost is not None and job.cost.stitch_usd == pytest.approx(STITCH_USD)

    # the log lines say who did what: the poller waited, the notice ended the job
    deadline = time.monotonic() + 10
    while not [e for e in function_lines(suite, job_id) if e["message"].startswith("stitch done")]:
        assert time.monotonic() < deadline, "no 'stitch done' line"
        time.sleep(0.2)
    mine = function_lines(suite, job_id)
    [done] = [e for e in mine if e["message"].startswith("stitch done")]
    assert (done["step"], done["userId"]) == ("stitch-notified", uid)
    assert any(e.get("step") == "stitch-poll" and e["message"].startswith("waiting up to") for e in mine)
    print(f"completed {latency:.2f} s after the Transcoder stand-in ended the job")


def test_a_second_user_cannot_read_someone_elses_job(suite: EmulatorSuite, db: firestore.Client) -> None:
    owner, owner_token = sign_up(suite)
    job_id = call(suite, "trigger_long_form_video_job", {"prompts": PROMPTS[:1], "segmentSeconds": 6}, owner_token)[
        "jobId"
    ]
    _, stranger_token = sign_up(suite)
    url = f"http://{suite.firestore_host}/v1/projects/{PROJECT}/databases/(default)/documents/videoJobs/{job_id}"

    def read(token: str) -> int:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert read(owner_token) == 200
    assert read(stranger_token) == 403
    with watching(db, job_id) as watch:
        assert watch.wait_for(finished).user_id == owner  # let it end before the next test


# -- when things go wrong ---------------------------------------------------------------------------


def test_a_failed_transcoder_job_fails_the_job_with_its_stitch_error(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    transcoder = suite.standins.transcoder
    transcoder.states = ["RUNNING", "FAILED"]
    try:
        with start_job(suite, db, "transcoder-fails") as (_, _, _, watch):
            job = watch.wait_for(finished)
    finally:
        transcoder.states = ["RUNNING", "SUCCEEDED"]

    assert job.status is Status.FAILED
    assert job.stitch_error and transcoder.failure in job.stitch_error
    assert watch.statuses() == ["queued", "generating", "stitching", "failed"]
    assert job.progress < 100 and job.video_uri is None


def test_a_veo_call_refused_with_503_then_429_is_retried_the_quota_hit_counted_and_the_job_completes(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    suite.standins.vertex.fail_next(PREDICT, HttpFailure(503, "overloaded"), HttpFailure(429, "Quota exceeded"))
    with start_job(suite, db, "veo-503-429") as (uid, _, job_id, watch):
        job = watch.wait_for(finished)

    assert job.status is Status.COMPLETED, job.error
    assert [s.attempts for s in job.segments] == [1, 1, 1]  # one generation each: the refused start was retried
    [run] = suite.standins.inngest.runs_of(GENERATE, job_id)
    assert run.ops.count("StepError segment-0-start") == 2  # retried by the executor, with backoff
    assert [s.quota_hits for s in job.segments] == [1, 0, 0] and job.quota_hits == 1
    assert ledger(db, uid)["quotaHits"] == 1


def test_a_scene_the_safety_filter_blocks_fails_the_job_through_on_failure(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    suite.standins.vertex.script(Outcome.video(), Outcome.filtered("violence"))  # the second scene is blocked
    with start_job(suite, db, "blocked") as (_, _, job_id, watch):
        job = watch.wait_for(finished)

    assert job.status is Status.FAILED
    assert job.error and "violence" in job.error and job.error_step == "segment-1-poll-0"
    assert [s.status for s in job.segments][:1] == [SegmentStatus.COMPLETED]
    [run] = suite.standins.inngest.runs_of(GENERATE, job_id)
    [handler] = suite.standins.inngest.runs_of(GENERATE + "-failure", job_id)
    assert handler.done.wait(30), "on_failure did not end"
    assert (run.status, handler.status) == ("Failed", "Completed")
    assert len(generations_of(suite, job_id)) == 2  # not retried: the run failed at once


def test_cancelling_a_running_job_ends_it_cancelled_and_starts_no_further_segment(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    suite.standins.vertex.script(Outcome.video(pending=10_000))  # the first scene never finishes by itself
    with start_job(suite, db, "cancelled") as (_, token, job_id, watch):
        watch.wait_for(lambda doc: doc["segments"][0]["status"] == "generating")
        asked_of_veo(suite, job_id)
        assert call(suite, "cancel_long_form_video_job", {"jobId": job_id}, token)["status"] == "cancelled"
        job = watch.wait_for(finished)
        [run] = suite.standins.inngest.runs_of(GENERATE, job_id)
        assert run.done.wait(30), "the run did not stop"

    assert job.status is Status.CANCELLED and job.timings.get("cancelledAt")
    # Ended by the cancel event, as Inngest does; or, when a step read the cancelled job before the
    # event arrived (the callable writes the job first), by the function itself, quietly.
    assert run.status == "Cancelled" or (run.status, run.output["status"]) == ("Completed", "cancelled")
    time.sleep(2)
    assert len(generations_of(suite, job_id)) == 1
    assert not [e for e in suite.standins.inngest.named("video/stitch.requested") if e["data"]["jobId"] == job_id]
    assert Job.from_json(db.collection("videoJobs").document(job_id).get().to_dict() or {}).status is Status.CANCELLED


# -- who may spend, how much, and the media ----------------------------------------------------------


def test_an_anonymous_account_is_refused_and_nothing_is_made(suite: EmulatorSuite, db: firestore.Client) -> None:
    uid, token = sign_up(suite, anonymous=True)
    status, body = answer(suite, "trigger_long_form_video_job", {"prompts": PROMPTS[:1]}, token)
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert "sign in" in body["error"]["message"]
    assert list(db.collection("videoJobs").where(filter=FieldFilter("userId", "==", uid)).stream()) == []


def test_the_budget_refuses_what_does_not_fit_and_a_cancelled_job_gives_back_its_unmade_seconds(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    suite.standins.vertex.script(Outcome.video(pending=10_000))  # the first scene never finishes by itself
    uid, token = sign_up(suite)
    long_job = {"prompts": [f"scene {i}" for i in range(50)], "segmentSeconds": 8}  # 400 s of the 600 s a day
    first = call(suite, "trigger_long_form_video_job", long_job, token)["jobId"]
    today = db.collection("usage").document(uid).collection("days").document(time.strftime("%Y-%m-%d", time.gmtime()))
    assert (today.get().to_dict() or {})["seconds"] == 400

    status, body = answer(suite, "trigger_long_form_video_job", long_job, token)
    assert (status, body["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert body["error"]["details"] == {
        "scope": "user",
        "limitSeconds": 600,
        "remainingSeconds": 200,
        "requestedSeconds": 400,
    }

    with watching(db, first) as watch:
        watch.wait_for(lambda doc: doc["segments"][0]["status"] == "generating")
        call(suite, "cancel_long_form_video_job", {"jobId": first}, token)
        job = watch.wait_for(finished)
    assert job.status is Status.CANCELLED and job.budget is not None and job.budget.returned_seconds == 400
    usage = today.get().to_dict() or {}
    assert (usage["seconds"], usage["returnedSeconds"]) == (0, 400)
    second = call(suite, "trigger_long_form_video_job", long_job, token)["jobId"]  # fits again
    call(suite, "cancel_long_form_video_job", {"jobId": second}, token)


def test_ten_concurrent_triggers_against_a_budget_that_fits_three_admit_exactly_three(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    uid, token = sign_up(suite)
    url = f"{suite.auth_url}/identitytoolkit.googleapis.com/v1/projects/{PROJECT}/accounts:lookup"
    status, body = _post(url, {"localId": [uid]}, "owner")
    assert status == 200, body
    token = with_claims(suite, uid, body["users"][0]["email"], videoSecondsPerDay=24)  # three 8 s jobs
    answers: list[tuple[int, dict[str, Any]]] = []

    def trigger(n: int) -> None:
        request = {"prompts": [f"race {n}"], "segmentSeconds": 8, "requestId": f"race-{n}"}
        for _ in range(5):  # as a client does when told UNAVAILABLE (contention outlasting the store's retries)
            status, body = answer(suite, "trigger_long_form_video_job", request, token)
            if body.get("error", {}).get("status") != "UNAVAILABLE":
                break
        answers.append((status, body))

    threads = [threading.Thread(target=trigger, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    admitted = [body["result"]["jobId"] for status, body in answers if status == 200]
    refused = [body["error"] for status, body in answers if status != 200]
    assert len(admitted) == 3, [(status, body.get("error")) for status, body in answers]
    assert len(refused) == 7 and {(e["status"], e["details"]["scope"]) for e in refused} == {
        ("RESOURCE_EXHAUSTED", "user")
    }
    assert len(list(db.collection("videoJobs").where(filter=FieldFilter("userId", "==", uid)).stream())) == 3
    for job_id in admitted:  # no need to make them
        call(suite, "cancel_long_form_video_job", {"jobId": job_id}, token)


def test_the_owners_playback_link_downloads_the_video_and_only_the_owner_may_delete(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    owner, token = sign_up(suite)
    job_id = call(suite, "trigger_long_form_video_job", {"prompts": PROMPTS[:1], "segmentSeconds": SECONDS}, token)[
        "jobId"
    ]
    with watching(db, job_id) as watch:
        assert watch.wait_for(finished).status is Status.COMPLETED
    _, stranger = sign_up(suite)
    for function in ("get_playback_urls", "delete_long_form_video_job"):
        status, body = answer(suite, function, {"jobId": job_id}, stranger)
        assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED"), function

    links = call(suite, "get_playback_urls", {"jobId": job_id}, token)
    assert links["videoUrl"].startswith(f"{suite.storage_url}/{BUCKET}/jobs/{job_id}/final/video.mp4?X-Goog-")
    assert links["segments"][0]["url"].startswith(f"{suite.storage_url}/{BUCKET}/jobs/{job_id}/segments/")
    with urllib.request.urlopen(links["videoUrl"], timeout=30) as response, tempfile_named(".mp4") as video:
        video.write_bytes(response.read())
        assert abs(probe(video).frames - SECONDS * FPS) <= 2

    assert call(suite, "delete_long_form_video_job", {"jobId": job_id}, token) == {"jobId": job_id, "deleted": True}
    assert not db.collection("videoJobs").document(job_id).get().exists
    assert suite.standins is not None and suite.standins.gcs.list(f"jobs/{job_id}/") == []
    assert not list(db.collection("videoJobs").where(filter=FieldFilter("userId", "==", owner)).stream())


def test_a_failed_job_resumed_through_the_callable_makes_only_its_missing_scene(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    suite.standins.vertex.script(Outcome.video(), Outcome.filtered("violence"))  # the second scene is blocked once
    with start_job(suite, db, "resumed") as (_, token, job_id, watch):
        failed = watch.wait_for(finished)
        assert failed.status is Status.FAILED and failed.error_step == "segment-1-poll-0"
        assert call(suite, "resume_long_form_video_job", {"jobId": job_id}, token)["status"] == "generating"
        job = watch.wait_for(lambda doc: finished(doc) and bool(doc.get("resumes")))

    assert job.status is Status.COMPLETED, job.error
    prompts = [g["instances"][0]["prompt"] for g in generations_of(suite, job_id)]
    assert prompts == [PROMPTS[0], PROMPTS[1], PROMPTS[1], PROMPTS[2]]  # scene 1 made once, scene 2 again
    assert [(r.error_step) for r in job.resumes] == ["segment-1-poll-0"]
    with suite.standins.gcs.local_path(suite.standins.gcs.key_of(job.video_uri or "")) as video:
        assert abs(probe(video).frames - len(PROMPTS) * SECONDS * FPS) <= 2


def test_an_edit_through_the_callable_makes_version_2_generating_only_the_changed_scene(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    new_prompt = "The fox turns back towards the camera"
    edit = {"scenes": [{"from": 0}, {"from": 1, "prompt": new_prompt}, {"from": 2}], "requestId": "edit-1"}
    with start_job(suite, db, "edited") as (_, token, job_id, watch):
        status, body = answer(suite, "edit_long_form_video_job", {"jobId": job_id} | edit, token)
        assert (status, body["error"]["status"]) == (400, "FAILED_PRECONDITION")  # still running
        assert "cannot be edited" in body["error"]["message"]
        v1 = watch.wait_for(finished)
        assert v1.status is Status.COMPLETED, v1.error
        _, stranger = sign_up(suite)
        status, body = answer(suite, "edit_long_form_video_job", {"jobId": job_id} | edit, stranger)
        assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")

        applied = call(suite, "edit_long_form_video_job", {"jobId": job_id} | edit, token)
        assert (applied["version"], applied["plan"]["generate"], applied["plan"]["cuts"]) == (2, [1], [2])
        v2 = watch.wait_for(lambda doc: doc.get("version") == 2 and finished(doc))

    assert v2.status is Status.COMPLETED, v2.error
    prompts = [g["instances"][0]["prompt"] for g in generations_of(suite, job_id)]
    assert prompts == [*PROMPTS, new_prompt]  # one model call for the edit
    assert v2.video_uri and v2.versions[0].video_uri and v2.video_uri != v2.versions[0].video_uri
    assert v2.cost is not None and v2.cost.scenes_usd == pytest.approx(v2.segments[1].cost_usd)
    for uri in (v2.video_uri, v2.versions[0].video_uri):  # both versions play
        with suite.standins.gcs.local_path(suite.standins.gcs.key_of(uri)) as video:
            assert abs(probe(video).frames - len(PROMPTS) * SECONDS * FPS) <= 2
    links = call(suite, "get_playback_urls", {"jobId": job_id, "version": 1}, token)
    assert links["videoUrl"].startswith(f"{suite.storage_url}/{BUCKET}/jobs/{job_id}/final/video.mp4?X-Goog-")


@contextmanager
def tempfile_named(suffix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / f"file{suffix}"


# -- nothing stays stuck ---------------------------------------------------------------------------


def sweep(suite: EmulatorSuite, db: firestore.Client, ahead: timedelta) -> dict[str, int]:
    """The body of sweep_stuck_jobs, run as Cloud Scheduler would run it (the emulators fire no
    schedules), against this suite's Firestore and Inngest, with the clock ``ahead``."""
    assert suite.standins is not None
    client = inngest.Inngest(app_id=APP_ID, is_production=False, event_api_base_url=suite.standins.inngest.url)
    cloud = Cloud(Settings(project=PROJECT, stitch_backend="transcoder"), firestore=db, inngest=client)
    cloud.service.clock = lambda: datetime.now(UTC) + ahead
    return cloud.service.sweep(repoll_stitches=True)


def stitching_with_a_dead_poller(suite: EmulatorSuite, owner: str, segment: str) -> Job:
    """A one-scene job whose Transcoder job was started and recorded, the poller's lease taken by
    a poller that died (it is not written yet: the caller writes it)."""
    assert suite.standins is not None
    # The functions' own credentials: the suite's throwaway key, whose tokens come from the OAuth stand-in.
    key = service_account.Credentials.from_service_account_file(
        str(suite.workdir / "service-account.json"), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    stitcher = TranscoderStitcher(transcoder_client(suite.standins.transcoder.url, key), PROJECT, REGION, BUCKET)
    held = Job.new(validate_request({"prompts": PROMPTS[:1], "segmentSeconds": SECONDS}), owner)
    key_of_segment = suite.standins.gcs.key_of(segment)
    spec = StitchSpec(
        held.job_id, owner, held.run_key, (key_of_segment,), final_key(held.job_id), 1280, 720, SECONDS, True
    )
    held.status, held.progress, held.stitch_job = Status.STITCHING, 90, stitcher.start(spec)
    held.segments[0].status, held.segments[0].uri = SegmentStatus.COMPLETED, segment
    held.stitch_lease_until = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()  # the dead poller's
    held.updated_at = "2026-01-01T00:00:00.000Z"
    return held


def test_stuck_jobs_each_reach_a_final_or_running_again_state_within_one_sweep(
    suite: EmulatorSuite, db: firestore.Client
) -> None:
    assert suite.standins is not None
    store = FirestoreJobStore(db)
    owner, token = sign_up(suite)
    request = validate_request({"prompts": PROMPTS[:1], "segmentSeconds": SECONDS})

    # 1. Left queued with no event (the callable died after writing the job): sent again, it runs.
    lost = Job.new(request, owner)
    store.submit(lost)
    with watching(db, lost.job_id) as watch:
        assert sweep(suite, db, timedelta(minutes=11)) == {"requeued": 1, "failed": 0, "repolled": 0}
        made = watch.wait_for(finished)
    assert made.status is Status.COMPLETED, made.error

    # 2. A run cancelled outside the product (Inngest's dashboard): the job fails saying so, and resumes.
    suite.standins.vertex.script(Outcome.video(pending=10_000))  # its scene never finishes by itself
    job_id = call(suite, "trigger_long_form_video_job", {"prompts": PROMPTS[:1], "segmentSeconds": SECONDS}, token)[
        "jobId"
    ]
    with watching(db, job_id) as watch:
        watch.wait_for(lambda doc: doc["segments"][0]["status"] == "generating")
        asked_of_veo(suite, job_id)
        [run] = suite.standins.inngest.runs_of(GENERATE, job_id)
        run.cancelled.set()  # what the dashboard's Cancel does
        assert run.done.wait(60)
        assert sweep(suite, db, timedelta(minutes=95))["failed"] >= 1
        stopped = watch.wait_for(finished)
        assert stopped.status is Status.FAILED and "the run stopped" in (stopped.error or "")
        assert call(suite, "resume_long_form_video_job", {"jobId": job_id}, token)["status"] == "generating"
        assert watch.wait_for(lambda doc: finished(doc) and bool(doc.get("resumes"))).status is Status.COMPLETED

    # 3. A poller killed holding its lease: the stitch is polled again and the job completes.
    held = stitching_with_a_dead_poller(suite, owner, made.segments[0].uri or "")
    with watching(db, held.job_id) as watch:
        db.collection("videoJobs").document(held.job_id).set(
            held.to_json()
        )  # fires the poller: lease held, it leaves it
        time.sleep(3)
        assert (
            Job.from_json(db.collection("videoJobs").document(held.job_id).get().to_dict() or {}).status
            is Status.STITCHING
        )
        assert sweep(suite, db, timedelta(minutes=21))["repolled"] == 1
        polled = watch.wait_for(finished)
    assert polled.status is Status.COMPLETED and polled.video_uri == f"gs://{BUCKET}/{final_key(held.job_id)}"


def test_cancelling_a_stitching_job_deletes_its_transcoder_job(suite: EmulatorSuite, db: firestore.Client) -> None:
    assert suite.standins is not None
    with start_job(suite, db, "made-to-stitch") as (owner, token, _, watch):
        made = watch.wait_for(finished)
    assert made.status is Status.COMPLETED, made.error
    held = stitching_with_a_dead_poller(suite, owner, made.segments[0].uri or "")
    db.collection("videoJobs").document(held.job_id).set(held.to_json())  # the poller leaves it: lease held

    assert call(suite, "cancel_long_form_video_job", {"jobId": held.job_id}, token)["status"] == "cancelled"

    deadline = time.monotonic() + 30  # the trigger fires on the cancel's write
    while held.stitch_job not in suite.standins.transcoder.deleted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert held.stitch_job in suite.standins.transcoder.deleted
    job = Job.from_json(db.collection("videoJobs").document(held.job_id).get().to_dict() or {})
    assert job.status is Status.CANCELLED and job.video_uri is None
