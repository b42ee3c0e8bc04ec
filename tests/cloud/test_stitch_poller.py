"""The Firestore-triggered poller against the real Firestore emulator, with a scripted stitcher
standing in for the Transcoder API."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.cloud import stitch_poller
from longform.cloud.composition import Cloud
from longform.cloud.stitch_poller import PollRound, StitchEnding
from longform.config import Settings
from longform.errors import PermanentError
from longform.job import Job, Status
from longform.ports import StitchJob, final_key
from longform.prices import PRICES, Pricing
from longform.request import validate_request
from tests.fakes import BROKEN, FakeMediaChecker, InMemoryBlobStore

NAME = "projects/p/locations/us-central1/jobs/transcode-1"
PRICING = Pricing(PRICES, "veo-3.1-fast-generate-001", "transcoder", estimated=False)


class ScriptedStitcher:
    """Answers polls from a script: "running", "done", or an exception to raise."""

    def __init__(self, job_id: str, script: list[Any], pause: float = 0.0) -> None:
        self.job_id, self.script, self.pause = job_id, list(script), pause
        self.polls = 0
        self.cancelled: list[str] = []
        self._lock = threading.Lock()

    def start(self, spec: Any) -> str:
        raise AssertionError("the poller never starts a stitch")

    def poll(self, name: str) -> StitchJob:
        assert name == NAME
        with self._lock:
            self.polls += 1
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        time.sleep(self.pause)
        if isinstance(step, Exception):
            raise step
        return StitchJob(name, done=True, key=final_key(self.job_id)) if step == "done" else StitchJob(name, False)

    def cancel(self, name: str) -> None:
        self.cancelled.append(name)


@pytest.fixture
def jobs(firestore_emulator: Any) -> FirestoreJobStore:
    return FirestoreJobStore(firestore_emulator.client(), "videoJobs")


def stitching_job(jobs: FirestoreJobStore) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A job that just recorded its Transcoder job: returns its id and the (before, after) docs."""
    job = Job.new(validate_request({"prompts": ["a", "b"]}), "poll-user")
    jobs.create(job)

    def to_stitching(j: Job) -> None:
        j.move_to(Status.GENERATING)
        for i in range(2):
            j.start_segment(i)
            j.complete_segment(i, f"gs://b/jobs/{j.job_id}/segments/{i}.mp4")
        j.move_to(Status.STITCHING)

    before = jobs.update(job.job_id, to_stitching).to_json()
    after = jobs.update(job.job_id, lambda j: j.record_stitch_job(NAME)).to_json()
    return job.job_id, before, after


def made(job_id: str, video: bytes = b"video") -> tuple[InMemoryBlobStore, FakeMediaChecker]:
    """A bucket holding the job's final video (what the Transcoder writes), and its checker."""
    blobs = InMemoryBlobStore()
    blobs.put(final_key(job_id), video)
    return blobs, FakeMediaChecker(blobs)


def cloud(jobs: FirestoreJobStore, stitcher: ScriptedStitcher) -> Cloud:
    """The composition the trigger runs in: the emulator's jobs, the scripted Transcoder."""
    blobs, checker = made(stitcher.job_id)
    return Cloud(Settings(stitch_backend="transcoder"), jobs=jobs, blobs=blobs, stitcher=stitcher, checker=checker)


def test_a_running_stitch_that_succeeds_completes_the_job(jobs: FirestoreJobStore) -> None:
    job_id, _, _ = stitching_job(jobs)
    stitcher = ScriptedStitcher(job_id, ["running", "running", "done"])
    sleeps: list[float] = []
    ending = StitchEnding(jobs, stitcher, *made(job_id), PRICING)
    stitch_poller.poll_stitch(ending, job_id, PollRound(60, max_attempts=3, sleep=sleeps.append))

    job = jobs.get(job_id)
    assert (job.status, job.progress, job.video_uri) == (Status.COMPLETED, 100, f"mem://{final_key(job_id)}")
    assert job.video_url == f"https://signed.example/{final_key(job_id)}?expires={72 * 3600}"
    assert stitcher.polls == 3 and sleeps == [2.0, 4.0]  # backoff between polls
    assert job.stitch_lease_until is None


def test_a_running_stitch_that_fails_fails_the_job_with_stitch_error(jobs: FirestoreJobStore) -> None:
    job_id, _, _ = stitching_job(jobs)
    stitcher = ScriptedStitcher(job_id, ["running", PermanentError("Transcoder: input 2 is shorter than 5 s")])
    ending = StitchEnding(jobs, stitcher, *made(job_id), PRICING)
    stitch_poller.poll_stitch(ending, job_id, PollRound(60, max_attempts=3, sleep=lambda s: None))

    job = jobs.get(job_id)
    assert job.status is Status.FAILED
    assert job.stitch_error == "Transcoder: input 2 is shorter than 5 s" == job.error
    assert job.error_step == "stitch"


def test_a_finished_stitch_whose_video_fails_the_check_fails_the_job_naming_the_problem(
    jobs: FirestoreJobStore,
) -> None:
    job_id, _, _ = stitching_job(jobs)
    blobs, checker = made(job_id, BROKEN + b"cut short")
    stitcher = ScriptedStitcher(job_id, ["done"])
    ending = StitchEnding(jobs, stitcher, blobs, checker, PRICING)
    stitch_poller.poll_stitch(ending, job_id, PollRound(60, max_attempts=3, sleep=lambda s: None))

    job = jobs.get(job_id)
    assert (job.status, job.error_step) == (Status.FAILED, "stitch")
    assert job.stitch_error == f"{final_key(job_id)}: the video is corrupt at 2.5 s"
    [(key, expected, decode_video)] = checker.checked
    assert (key, expected.seconds, expected.audio, decode_video) == (final_key(job_id), 16, True, False)


def test_recording_the_stitch_job_fires_a_poll(jobs: FirestoreJobStore) -> None:
    job_id, before, after = stitching_job(jobs)
    stitcher = ScriptedStitcher(job_id, ["done"])
    stitch_poller.on_job_updated(job_id, before, after, cloud(jobs, stitcher))
    assert stitcher.polls == 1
    assert jobs.get(job_id).status is Status.COMPLETED


def test_a_progress_only_update_does_not_poll(jobs: FirestoreJobStore) -> None:
    job_id, _, after = stitching_job(jobs)
    stitcher = ScriptedStitcher(job_id, ["done"])
    progressed = {**after, "progress": after["progress"] + 1}
    stitch_poller.on_job_updated(job_id, after, progressed, cloud(jobs, stitcher))
    assert stitcher.polls == 0
    assert jobs.get(job_id).status is Status.STITCHING


def test_two_triggers_at_once_poll_once(jobs: FirestoreJobStore) -> None:
    job_id, before, after = stitching_job(jobs)
    stitcher = ScriptedStitcher(job_id, ["done"], pause=0.3)
    threads = [
        threading.Thread(target=stitch_poller.on_job_updated, args=(job_id, before, after, cloud(jobs, stitcher)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stitcher.polls == 1
    assert jobs.get(job_id).status is Status.COMPLETED


def test_the_poller_hands_over_when_its_budget_runs_out_then_fails_after_the_last_attempt(
    jobs: FirestoreJobStore,
) -> None:
    job_id, _, _ = stitching_job(jobs)
    stitcher = ScriptedStitcher(job_id, ["running"])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def round_() -> None:
        ending = StitchEnding(jobs, stitcher, *made(job_id), PRICING)
        stitch_poller.poll_stitch(ending, job_id, PollRound(10, max_attempts=2, clock=lambda: now[0], sleep=sleep))

    round_()
    handed_over = jobs.get(job_id)
    assert handed_over.status is Status.STITCHING
    assert handed_over.stitch_poll_attempts == 1 and handed_over.stitch_lease_until is None
    first_round = stitcher.polls
    assert first_round == 3  # at 0, 2 and 6 s; the next (at 14 s) would pass the 10 s budget

    round_()
    job = jobs.get(job_id)
    assert job.status is Status.FAILED
    assert job.stitch_error is not None and "did not finish after 2 polling rounds" in job.stitch_error


def test_a_handed_over_job_is_polled_by_the_next_trigger(jobs: FirestoreJobStore) -> None:
    job_id, _, _ = stitching_job(jobs)
    before = jobs.update(job_id, lambda j: setattr(j, "stitch_lease_until", "2099-01-01T00:00:00.000Z")).to_json()
    after = jobs.update(job_id, lambda j: j.hand_over_stitch()).to_json()
    stitcher = ScriptedStitcher(job_id, ["done"])
    stitch_poller.on_job_updated(job_id, before, after, cloud(jobs, stitcher))
    assert stitcher.polls == 1 and jobs.get(job_id).status is Status.COMPLETED


def test_a_job_cancelled_while_stitching_is_not_polled(jobs: FirestoreJobStore) -> None:
    job_id, before, after = stitching_job(jobs)
    jobs.update(job_id, lambda j: j.move_to(Status.CANCELLED))
    stitcher = ScriptedStitcher(job_id, ["done"])
    stitch_poller.on_job_updated(job_id, before, after, cloud(jobs, stitcher))
    assert stitcher.polls == 0 and jobs.get(job_id).status is Status.CANCELLED


def test_cancelling_a_stitching_job_stops_its_transcoder_job(jobs: FirestoreJobStore) -> None:
    job_id, _, stitching = stitching_job(jobs)
    cancelled = jobs.update(job_id, lambda j: j.move_to(Status.CANCELLED)).to_json()
    stitcher = ScriptedStitcher(job_id, ["running"])

    stitch_poller.on_job_updated(job_id, stitching, cancelled, cloud(jobs, stitcher))
    stitch_poller.on_job_updated(job_id, cancelled, cancelled, cloud(jobs, stitcher))  # a later write: once is enough

    assert stitcher.cancelled == [NAME] and stitcher.polls == 0
