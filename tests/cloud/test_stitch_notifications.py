"""The Transcoder's Pub/Sub notice (cloud/stitch_notifications.py) on its own, against the real
Firestore emulator, with a scripted Transcoder: it ends a stitching job once, however often the
notice comes and whether the poller ends the job before it, after it or while it runs; the job's
stitch is billed once; a notice about a job that is not ours changes nothing."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from firebase_functions.pubsub_fn import Message

from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.budget import Usage, utc_day
from longform.cloud import stitch_notifications, stitch_poller
from longform.cloud.composition import Cloud
from longform.cloud.stitch_poller import PollRound, StitchEnding
from longform.config import Settings
from longform.errors import PermanentError
from longform.job import Job, Reservation, Status
from longform.ports import StitchJob, final_key
from longform.prices import PRICES, Pricing
from longform.request import validate_request
from tests.fakes import FakeMediaChecker, InMemoryBlobStore

PRICING = Pricing(PRICES, "veo-3.1-fast-generate-001", "transcoder", estimated=False)
FAILURE = "Transcoder job failed: The input file is shorter than 5 seconds."


class Transcoder:
    """Answers polls of its jobs from a script: "running", "done", or an exception to raise.
    ``during_poll`` runs inside a poll, before it answers (something that happens meanwhile)."""

    def __init__(self, job_id: str, script: list[Any]) -> None:
        self.job_id, self.script = job_id, list(script)
        self.polls = 0
        self.during_poll: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def start(self, spec: Any) -> str:
        raise AssertionError("nothing here starts a stitch")

    def poll(self, name: str) -> StitchJob:
        with self._lock:
            self.polls += 1
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if self.during_poll is not None:
            hook, self.during_poll = self.during_poll, None
            hook()
        if isinstance(step, Exception):
            raise step
        return StitchJob(name, done=True, key=final_key(self.job_id)) if step == "done" else StitchJob(name, False)

    def cancel(self, name: str) -> None:
        raise AssertionError("nothing here cancels a stitch")


class World:
    """A stitching job of a user of its own in the emulator, its Transcoder job, its bucket."""

    def __init__(self, jobs: FirestoreJobStore, script: list[Any], backend: str = "transcoder") -> None:
        self.jobs = jobs
        self.user = f"user-{uuid.uuid4().hex[:8]}"
        self.name = f"projects/123456/locations/us-central1/jobs/{uuid.uuid4()}"
        request = validate_request({"prompts": ["a", "b"], "segmentSeconds": 8})
        job = Job.new(request, self.user)
        job.budget = Reservation(day=utc_day(), seconds=request.duration_seconds)
        job.cost = PRICING.estimate(request)
        self.job_id = job.job_id
        jobs.submit(job)

        def to_stitching(j: Job) -> None:
            j.move_to(Status.GENERATING)
            for i in range(2):
                j.start_segment(i)
                j.complete_segment(i, f"gs://b/jobs/{j.job_id}/segments/{i}.mp4")
            j.move_to(Status.STITCHING)

        jobs.update(self.job_id, to_stitching)
        jobs.update(self.job_id, lambda j: j.record_stitch_job(self.name))
        self.transcoder = Transcoder(self.job_id, script)
        self.blobs = InMemoryBlobStore()
        self.blobs.put(final_key(self.job_id), b"video")
        self.checker = FakeMediaChecker(self.blobs)
        settings = Settings(stitch_backend=backend, transcoder_topic="transcoder-jobs")  # type: ignore[arg-type]
        self.cloud = Cloud(settings, jobs=jobs, blobs=self.blobs, stitcher=self.transcoder, checker=self.checker)
        self.stitch_usd = PRICING.stitch_usd(request, 2)

    def notice(self, state: str = "SUCCEEDED", name: str | None = None) -> Message[Any]:
        """The message the Transcoder publishes when the job ends, as pubsub_fn hands it over."""
        job: dict[str, Any] = {"name": name or self.name, "state": state}
        if state == "FAILED":
            job["error"] = {"code": 3, "message": "The input file is shorter than 5 seconds."}
        return raw_message(json.dumps({"job": job}).encode())

    def deliver(self, message: Message[Any] | None = None) -> None:
        stitch_notifications.on_message(message or self.notice(), self.cloud)

    def poll(self, safety_net_seconds: float = 0.0, sleep: Callable[[float], None] | None = None) -> None:
        """The poller's round, as the trigger runs it for this job, on a simulated clock (``sleep``
        is told each wait too)."""
        now = [0.0]

        def sleeping(seconds: float) -> None:
            now[0] += seconds
            if sleep is not None:
                sleep(seconds)

        ending = StitchEnding(self.jobs, self.transcoder, self.blobs, self.checker, PRICING)
        rounds = PollRound(60, 3, safety_net_seconds, clock=lambda: now[0], sleep=sleeping)
        stitch_poller.poll_stitch(ending, self.job_id, rounds)

    def job(self) -> Job:
        return self.jobs.get(self.job_id)

    def ledger(self) -> Usage:
        return self.jobs.usage(self.user, utc_day())


def raw_message(data: bytes) -> Message[Any]:
    return Message(
        message_id=uuid.uuid4().hex,
        publish_time="2026-11-29T10:00:00.000000Z",
        attributes={},
        data=base64.b64encode(data).decode(),
        ordering_key="",
    )


@pytest.fixture
def jobs(firestore_emulator: Any) -> FirestoreJobStore:
    return FirestoreJobStore(firestore_emulator.client(), "videoJobs")


def assert_completed_once(world: World, before: Usage) -> Job:
    job = world.job()
    assert (job.status, job.progress, job.video_uri) == (Status.COMPLETED, 100, f"mem://{final_key(world.job_id)}")
    assert job.video_url == f"https://signed.example/{final_key(world.job_id)}?expires={72 * 3600}"
    assert job.cost is not None and job.cost.stitch_usd == pytest.approx(world.stitch_usd)
    assert job.stitch_lease_until is None
    after = world.ledger()
    assert after.completed - before.completed == 1
    assert after.spent_usd - before.spent_usd == pytest.approx(world.stitch_usd)  # the stitch, billed once
    return job


def test_a_notice_delivered_twice_completes_the_job_once_and_bills_its_stitch_once(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"])
    before = world.ledger()

    world.deliver()
    job = assert_completed_once(world, before)
    assert world.transcoder.polls == 1  # the notice is checked with the Transcoder, the video too
    assert [key for key, _, _ in world.checker.checked] == [final_key(world.job_id)]

    world.deliver()  # Pub/Sub delivers at least once
    assert world.job().updated_at == job.updated_at  # not written again
    assert_completed_once(world, before)
    assert world.transcoder.polls == 1 and len(world.checker.checked) == 1


def test_the_poller_first_then_the_notice_ends_the_job_once(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"])
    before = world.ledger()

    world.poll()
    job = assert_completed_once(world, before)
    world.deliver()

    assert world.job().updated_at == job.updated_at
    assert_completed_once(world, before)
    assert world.transcoder.polls == 1  # by the poller; the notice found the job ended


def test_the_notice_first_then_the_poller_ends_the_job_once(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"])
    before = world.ledger()

    world.deliver()
    job = assert_completed_once(world, before)
    world.poll()  # a poller fired before the notice ended the job, late

    assert world.job().updated_at == job.updated_at
    assert_completed_once(world, before)
    assert world.transcoder.polls == 1


def test_a_notice_that_arrives_while_the_poller_polls_ends_the_job_once(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"])
    before = world.ledger()
    world.transcoder.during_poll = world.deliver  # the poller asks; meanwhile the notice comes and ends it

    world.poll()

    assert_completed_once(world, before)
    assert world.transcoder.polls == 2  # each asked the Transcoder; one of them ended the job


def test_the_safety_net_waits_for_the_notice_and_polls_nothing_once_it_came(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["running"])
    jobs.update(world.job_id, lambda j: j.timings.__setitem__("stitchStartedAt", j.timings["createdAt"]))
    world.transcoder.script = ["done"]
    before = world.ledger()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # the notice comes during the poller's wait
            world.deliver()

    world.poll(safety_net_seconds=60, sleep=sleep)

    assert_completed_once(world, before)
    assert world.transcoder.polls == 1  # the notice's; the poller saw the job ended and did not poll
    assert slept == [stitch_poller.WAIT_CHECK_SECONDS] * 2


def test_the_safety_net_polls_when_no_notice_came(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"])
    before = world.ledger()
    slept: list[float] = []

    world.poll(safety_net_seconds=25, sleep=slept.append)  # the stitch started moments ago

    assert_completed_once(world, before)
    assert world.transcoder.polls == 1
    assert len(slept) == 3 and sum(slept) == pytest.approx(25, abs=1)  # 10 + 10 + 5: then it polled


def test_a_failure_notice_fails_the_job_with_its_stitch_error_once(jobs: FirestoreJobStore) -> None:
    world = World(jobs, [PermanentError(FAILURE)])
    before = world.ledger()

    world.deliver(world.notice("FAILED"))
    world.deliver(world.notice("FAILED"))

    job = world.job()
    assert (job.status, job.error_step) == (Status.FAILED, "stitch")
    assert job.stitch_error == FAILURE == job.error
    assert job.video_uri is None and job.progress < 100
    assert world.ledger().failed - before.failed == 1
    assert world.transcoder.polls == 1


def test_a_notice_about_a_job_that_is_not_ours_is_acknowledged_and_changes_nothing(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"])
    stitching = world.job()
    foreign = "projects/999/locations/europe-west4/jobs/not-one-of-ours"

    world.deliver(world.notice(name=foreign))  # another app's Transcoder job, on the same topic
    world.deliver(raw_message(b"not json"))
    world.deliver(raw_message(json.dumps({"subscription": "x"}).encode()))  # not a Transcoder notice
    world.deliver(raw_message(json.dumps({"job": {"state": "SUCCEEDED"}}).encode()))  # no name

    assert world.job() == stitching  # nothing written
    assert world.transcoder.polls == 0
    assert stitch_notifications.on_transcoder_notice(foreign, "SUCCEEDED", world.cloud) is None


def test_a_notice_about_a_cancelled_job_or_an_earlier_run_changes_nothing(jobs: FirestoreJobStore) -> None:
    cancelled = World(jobs, ["done"])
    jobs.update(cancelled.job_id, lambda j: j.move_to(Status.CANCELLED))
    before = cancelled.job()
    cancelled.deliver()
    assert cancelled.job() == before and cancelled.transcoder.polls == 0

    # a resumed job stitches with a new Transcoder job: the notice of the old one is not about it
    resumed = World(jobs, ["done"])
    old_name = resumed.name
    jobs.update(resumed.job_id, lambda j: j.record_stitch_job(old_name + "-r1"))
    stitching = resumed.job()
    resumed.deliver(resumed.notice(name=old_name))
    assert resumed.job() == stitching and resumed.transcoder.polls == 0


def test_a_deployment_that_stitches_in_the_function_ignores_notices(jobs: FirestoreJobStore) -> None:
    world = World(jobs, ["done"], backend="ffmpeg")
    stitching = world.job()
    world.deliver()
    assert world.job() == stitching and world.transcoder.polls == 0
