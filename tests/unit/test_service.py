"""The use cases over stateful fakes: a job store in memory and an engine that records."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from longform.budget import SpendLimits
from longform.errors import (
    BudgetExhausted,
    InvalidRequest,
    JobNotFound,
    JobNotQueued,
    NotResumable,
    PermissionDenied,
    TooManyActiveJobs,
    TransientError,
    Unauthenticated,
)
from longform.job import Job, Status, iso_time
from longform.ports import final_key, frame_key, segment_key
from longform.request import Limits, validate_request
from longform.service import MAX_REQUEUES, Caller, JobService
from tests.fakes import InMemoryBlobStore, InMemoryJobStore

ANN, BOB = Caller("ann"), Caller("bob")


class RecordingEngine:
    def __init__(self, fail_start: Exception | None = None, fail_cancel: Exception | None = None) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.fail_start, self.fail_cancel = fail_start, fail_cancel

    def start(self, job: Job) -> None:
        if self.fail_start:
            raise self.fail_start
        self.started.append(job.job_id)

    def cancel(self, job: Job) -> None:
        if self.fail_cancel:
            raise self.fail_cancel
        self.cancelled.append(job.job_id)


def service(engine: RecordingEngine | None = None, max_active: int | None = 2) -> JobService:
    return JobService(InMemoryJobStore(), engine or RecordingEngine(), Limits(), max_active)


def test_trigger_stores_a_queued_job_and_starts_it_once() -> None:
    jobs = service()
    ref = jobs.trigger(ANN, {"prompts": ["a", "b"]})
    assert ref["status"] == "queued"
    job = jobs.job(ANN, ref["jobId"])
    assert (job.user_id, [s.prompt for s in job.segments]) == ("ann", ["a", "b"])
    assert jobs.engine.started == [ref["jobId"]]  # type: ignore[attr-defined]


def test_the_same_request_id_returns_the_same_job_and_starts_nothing_more() -> None:
    jobs = service()
    first = jobs.trigger(ANN, {"prompts": ["a"], "requestId": "r1"})
    again = jobs.trigger(ANN, {"prompts": ["a"], "requestId": "r1"})
    other_user = jobs.trigger(BOB, {"prompts": ["a"], "requestId": "r1"})
    assert first == again and other_user["jobId"] != first["jobId"]
    assert jobs.engine.started == [first["jobId"], other_user["jobId"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("caller", [None, Caller("")])
def test_nobody_signed_in_may_trigger_cancel_or_read(caller: Caller | None) -> None:
    jobs = service()
    for use in (
        lambda: jobs.trigger(caller, {"prompts": ["a"]}),
        lambda: jobs.cancel(caller, {"jobId": "abc"}),
        lambda: jobs.recent(caller),
    ):
        with pytest.raises(Unauthenticated):
            use()
    assert jobs.jobs.list() == []


def test_an_anonymous_account_may_not_spend_unless_allowed_but_may_cancel() -> None:
    guest = Caller("guest", anonymous=True)
    strict = service()
    with pytest.raises(PermissionDenied, match="sign in"):
        strict.trigger(guest, {"prompts": ["a"]})
    assert strict.jobs.list() == []
    relaxed = JobService(InMemoryJobStore(), RecordingEngine(), allow_anonymous=True)
    job_id = relaxed.trigger(guest, {"prompts": ["a"]})["jobId"]
    assert relaxed.cancel(guest, {"jobId": job_id})["status"] == "cancelled"


def test_an_invalid_request_writes_nothing_and_starts_nothing() -> None:
    jobs = service()
    with pytest.raises(InvalidRequest) as caught:
        jobs.trigger(ANN, {"prompts": [" "], "segmentSeconds": 7})
    assert [f for f, _ in caught.value.problems] == ["prompts[0]", "segmentSeconds"]
    assert jobs.jobs.list() == [] and jobs.engine.started == []  # type: ignore[attr-defined]


def test_a_user_over_the_limit_is_refused_and_a_finished_job_makes_room() -> None:
    jobs = service(max_active=2)
    first = jobs.trigger(ANN, {"prompts": ["a"]})
    jobs.trigger(ANN, {"prompts": ["b"]})
    with pytest.raises(TooManyActiveJobs):
        jobs.trigger(ANN, {"prompts": ["c"]})
    jobs.trigger(BOB, {"prompts": ["c"]})  # the limit is per user
    jobs.cancel(ANN, {"jobId": first["jobId"]})
    assert jobs.trigger(ANN, {"prompts": ["c"]})["status"] == "queued"


def test_a_job_whose_start_fails_is_marked_failed_and_says_so() -> None:
    jobs = service(RecordingEngine(fail_start=TransientError("503 from the Event API")))
    with pytest.raises(JobNotQueued) as caught:
        jobs.trigger(ANN, {"prompts": ["a"]})
    job = jobs.jobs.get(caught.value.job_id)
    assert (job.status, job.error_step) == (Status.FAILED, "enqueue")
    assert job.error == "could not queue the job: 503 from the Event API"


def test_the_owner_cancels_and_the_engine_is_told_once() -> None:
    jobs = service()
    job_id = jobs.trigger(ANN, {"prompts": ["a"]})["jobId"]
    assert jobs.cancel(ANN, {"jobId": job_id}) == {"jobId": job_id, "status": "cancelled"}
    assert jobs.cancel(ANN, {"jobId": job_id}) == {"jobId": job_id, "status": "cancelled"}  # final: unchanged
    assert jobs.engine.cancelled == [job_id]  # type: ignore[attr-defined]


def test_a_cancel_the_engine_does_not_hear_still_cancels_the_job() -> None:
    jobs = service(RecordingEngine(fail_cancel=TransientError("Event API down")))
    job_id = jobs.trigger(ANN, {"prompts": ["a"]})["jobId"]
    assert jobs.cancel(ANN, {"jobId": job_id})["status"] == "cancelled"
    assert jobs.jobs.get(job_id).status is Status.CANCELLED


@pytest.mark.parametrize("data", [{}, {"jobId": "../x"}, {"jobId": 7}, "abc", None])
def test_a_cancel_without_a_job_id_names_the_field(data: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        service().cancel(ANN, data)
    assert (caught.value.field, caught.value.rule) == ("jobId", "must be a job id")


def test_only_the_owner_may_cancel_or_see_a_job() -> None:
    jobs = service()
    job_id = jobs.trigger(ANN, {"prompts": ["a"]})["jobId"]
    with pytest.raises(PermissionDenied):
        jobs.cancel(BOB, {"jobId": job_id})
    with pytest.raises(PermissionDenied):
        jobs.job(BOB, job_id)
    with pytest.raises(JobNotFound):
        jobs.cancel(ANN, {"jobId": "no-such-job"})
    assert jobs.jobs.get(job_id).status is Status.QUEUED


def test_find_takes_a_full_id_or_a_unique_prefix_of_the_callers_own_jobs() -> None:
    jobs = service(max_active=None)
    for job_id, caller in (("abcd1111", ANN), ("abcd2222", ANN), ("abce3333", ANN), ("abcf4444", BOB)):
        jobs.jobs.submit(Job.new(validate_request({"prompts": ["a"]}), caller.user_id, job_id))
    assert jobs.find(ANN, "abcd1111").job_id == "abcd1111"
    assert jobs.find(ANN, "abce").job_id == "abce3333"
    with pytest.raises(InvalidRequest, match="more than one job"):
        jobs.find(ANN, "abcd")
    with pytest.raises(JobNotFound):
        jobs.find(ANN, "abcf")  # bob's
    with pytest.raises(JobNotFound):
        jobs.find(ANN, "abc")  # shorter than 4 characters: not guessed


# -- the daily budget -------------------------------------------------------------------------


class Clock:
    def __init__(self, now: str) -> None:
        self.now = datetime.fromisoformat(now)

    def __call__(self) -> datetime:
        return self.now


def budgeted(
    user_seconds: int, project_seconds: int | None = None, now: str = "2026-11-29T23:00:00+00:00"
) -> JobService:
    clock = Clock(now)
    store = InMemoryJobStore(clock=lambda: iso_time(clock()))  # the job's writes on the test's clock, not today's
    return JobService(store, RecordingEngine(), budget=SpendLimits(user_seconds, project_seconds), clock=clock)


def test_a_job_over_the_days_budget_is_refused_saying_what_is_left_and_the_next_day_fits() -> None:
    jobs = budgeted(20)
    jobs.trigger(ANN, {"prompts": ["a", "b"]})  # 16 s
    with pytest.raises(BudgetExhausted) as caught:
        jobs.trigger(ANN, {"prompts": ["c"]})  # 8 s more
    assert "4 s of 20 s a day left" in str(caught.value)
    assert jobs.usage(ANN) == {"day": "2026-11-29", "usedSeconds": 16, "limitSeconds": 20, "leftSeconds": 4}
    assert jobs.trigger(ANN, {"prompts": ["c"], "segmentSeconds": 4})["status"] == "queued"  # what fits
    jobs.clock.now += timedelta(hours=2)  # type: ignore[attr-defined]  # past midnight UTC
    assert jobs.trigger(ANN, {"prompts": ["c"]})["status"] == "queued"
    assert jobs.usage(ANN)["usedSeconds"] == 8


def test_a_users_own_daily_budget_claim_replaces_the_default_but_not_the_projects() -> None:
    jobs = budgeted(8, project_seconds=40)
    premium = Caller("pat", seconds_per_day=32)
    for _ in range(4):
        jobs.trigger(premium, {"prompts": ["a"]})
    with pytest.raises(BudgetExhausted, match="you have 0 s of 32 s"):
        jobs.trigger(premium, {"prompts": ["a"]})
    jobs.trigger(ANN, {"prompts": ["a"]})  # 40 s used by the project now
    with pytest.raises(BudgetExhausted) as caught:
        jobs.trigger(BOB, {"prompts": ["a"]})
    assert (caught.value.scope, caught.value.remaining) == ("project", 0)


def test_a_cancelled_job_gives_its_seconds_back_to_the_caller() -> None:
    jobs = budgeted(16)
    job_id = jobs.trigger(ANN, {"prompts": ["a", "b"]})["jobId"]
    assert jobs.usage(ANN)["leftSeconds"] == 0
    jobs.cancel(ANN, {"jobId": job_id})
    assert jobs.usage(ANN) == {"day": "2026-11-29", "usedSeconds": 0, "limitSeconds": 16, "leftSeconds": 16}


# -- playing, deleting, retention -------------------------------------------------------------


def made(jobs: JobService, blobs: InMemoryBlobStore, caller: Caller, scenes: int = 2, **fields: Any) -> str:
    """A job run to completion by hand, its files in ``blobs``."""
    job_id = jobs.trigger(caller, {"prompts": [f"scene {i}" for i in range(scenes)], **fields})["jobId"]

    def complete(job: Job) -> None:
        job.move_to(Status.GENERATING)
        for i in range(scenes):
            blobs.put(segment_key(job_id, i), b"scene")
            blobs.put(frame_key(job_id, i), b"frame")
            job.start_segment(i)
            job.complete_segment(i, blobs.uri(segment_key(job_id, i)))
        job.move_to(Status.STITCHING)
        blobs.put(final_key(job_id), b"video")
        job.complete(blobs.uri(final_key(job_id)))

    jobs.jobs.update(job_id, complete)
    return job_id


def with_media(now: str = "2026-11-29T12:00:00+00:00") -> tuple[JobService, InMemoryBlobStore]:
    blobs = InMemoryBlobStore()
    jobs = JobService(
        InMemoryJobStore(),
        RecordingEngine(),
        clock=Clock(now),
        blobs=lambda: blobs,
        link=lambda key: f"https://x/{key}",
    )
    return jobs, blobs


def test_the_owner_gets_links_to_the_video_and_each_scene_made() -> None:
    jobs, blobs = with_media()
    job_id = made(jobs, blobs, ANN)
    assert jobs.playback(ANN, {"jobId": job_id}) == {
        "jobId": job_id,
        "version": 1,
        "videoUrl": f"https://x/{final_key(job_id)}",
        "segments": [{"index": i, "url": f"https://x/{segment_key(job_id, i)}"} for i in range(2)],
    }
    with pytest.raises(PermissionDenied):
        jobs.playback(BOB, {"jobId": job_id})
    queued = jobs.trigger(ANN, {"prompts": ["later"]})["jobId"]
    assert jobs.playback(ANN, {"jobId": queued})["videoUrl"] is None


def test_deleting_a_running_job_cancels_it_then_removes_its_files_and_its_document() -> None:
    jobs, blobs = with_media()
    done = made(jobs, blobs, ANN)
    running = jobs.trigger(ANN, {"prompts": ["a"]})["jobId"]
    blobs.put(segment_key(running, 0), b"half made")
    with pytest.raises(PermissionDenied):
        jobs.delete(BOB, {"jobId": running})
    assert jobs.delete(ANN, {"jobId": running}) == {"jobId": running, "deleted": True}
    assert jobs.engine.cancelled == [running]  # type: ignore[attr-defined]
    with pytest.raises(JobNotFound):
        jobs.job(ANN, running)
    assert blobs.list(f"jobs/{running}/") == [] and len(blobs.list(f"jobs/{done}/")) == 5


def test_retention_removes_old_scene_media_then_old_videos_and_marks_each_job() -> None:
    jobs, blobs = with_media(now="2026-10-01T00:00:00+00:00")
    old = made(jobs, blobs, ANN)
    jobs.clock.now = datetime.fromisoformat("2026-11-29T00:00:00+00:00")  # type: ignore[attr-defined]
    new = made(jobs, blobs, ANN)

    assert jobs.remove_old_media(scene_days=30) == {"scenes": 1, "videos": 0}
    assert blobs.list(f"jobs/{old}/") == [final_key(old)]
    assert len(blobs.list(f"jobs/{new}/")) == 5
    kept = jobs.job(ANN, old)
    assert kept.scene_media_removed_at == "2026-11-29T00:00:00.000Z" and kept.video_uri is not None
    assert [s["url"] for s in jobs.playback(ANN, {"jobId": old})["segments"]] == [None, None]
    assert jobs.remove_old_media(scene_days=30) == {"scenes": 0, "videos": 0}  # done once

    assert jobs.remove_old_media(scene_days=30, video_days=45) == {"scenes": 0, "videos": 1}
    assert blobs.list(f"jobs/{old}/") == []
    gone = jobs.job(ANN, old)
    assert (gone.video_uri, gone.video_removed_at) == (None, "2026-11-29T00:00:00.000Z")
    assert jobs.playback(ANN, {"jobId": old})["videoUrl"] is None


# -- resuming ---------------------------------------------------------------------------------


def failed_job(jobs: JobService, caller: Caller, scenes: int = 3, made: int = 1) -> str:
    """A job that made ``made`` scenes, then failed on the next."""
    job_id = jobs.trigger(caller, {"prompts": [f"scene {i}" for i in range(scenes)]})["jobId"]

    def fail(job: Job) -> None:
        job.move_to(Status.GENERATING)
        for i in range(made):
            job.start_segment(i)
            job.complete_segment(i, f"mem://{segment_key(job_id, i)}")
        job.start_segment(made)
        job.fail_segment(made, "blocked")
        job.fail("blocked", f"segment-{made}-start")

    jobs.jobs.update(job_id, fail)
    return job_id


def test_resuming_a_failed_job_books_back_its_seconds_and_starts_it_again() -> None:
    jobs = budgeted(24)
    job_id = failed_job(jobs, ANN)
    assert jobs.usage(ANN)["usedSeconds"] == 8  # the failed job gave back its two unmade scenes
    assert jobs.resume(ANN, {"jobId": job_id}) == {"jobId": job_id, "status": "generating"}
    assert jobs.usage(ANN)["usedSeconds"] == 24
    assert jobs.engine.started[-1] == job_id  # type: ignore[attr-defined]
    assert len(jobs.job(ANN, job_id).resumes) == 1


def test_a_resume_that_does_not_fit_todays_budget_leaves_the_job_failed() -> None:
    jobs = budgeted(24)
    job_id = failed_job(jobs, ANN)
    jobs.trigger(ANN, {"prompts": ["another"]})  # 16 s used now: the 16 s to take back do not fit
    with pytest.raises(BudgetExhausted):
        jobs.resume(ANN, {"jobId": job_id})
    job = jobs.job(ANN, job_id)
    assert (job.status, job.resumes) == (Status.FAILED, [])
    assert jobs.usage(ANN)["usedSeconds"] == 16


def test_only_the_owner_resumes_and_only_a_failed_job_unless_unfinished_ones_are_allowed() -> None:
    jobs = budgeted(600)
    job_id = failed_job(jobs, ANN)
    with pytest.raises(PermissionDenied):
        jobs.resume(BOB, {"jobId": job_id})
    running = jobs.trigger(ANN, {"prompts": ["a"]})["jobId"]
    with pytest.raises(NotResumable, match="still running"):
        jobs.resume(ANN, {"jobId": running})
    assert jobs.resume(ANN, {"jobId": running}, unfinished=True)["status"] == "queued"  # the CLI's case
    jobs.cancel(ANN, {"jobId": running})
    with pytest.raises(NotResumable, match="cancelled"):
        jobs.resume(ANN, {"jobId": running}, unfinished=True)


# -- nothing stays stuck -------------------------------------------------------------------------


def test_the_sweep_sends_a_lost_start_again_then_gives_up_saying_so() -> None:
    jobs = budgeted(600, now="2026-11-29T10:00:00+00:00")
    job_id = jobs.trigger(ANN, {"prompts": ["a", "b"]})["jobId"]
    jobs.engine.started.clear()  # type: ignore[attr-defined]  # as if the start had been lost
    assert jobs.sweep() == {"requeued": 0, "failed": 0, "repolled": 0}  # not stuck yet
    for _ in range(MAX_REQUEUES):
        jobs.clock.now += timedelta(minutes=11)  # type: ignore[attr-defined]
        assert jobs.sweep()["requeued"] == 1
    assert jobs.engine.started == [job_id] * MAX_REQUEUES  # type: ignore[attr-defined]
    jobs.clock.now += timedelta(minutes=11)  # type: ignore[attr-defined]
    assert jobs.sweep()["failed"] == 1
    job = jobs.job(ANN, job_id)
    assert (job.status, job.error_step) == (Status.FAILED, "sweep")
    assert job.error is not None and "could not be started" in job.error and "resume the job" in job.error
    assert jobs.usage(ANN)["usedSeconds"] == 0  # its unmade seconds went back


def test_the_sweep_fails_a_run_that_stopped_and_repolls_a_stitch_whose_poller_died() -> None:
    jobs = budgeted(600, now="2026-11-29T10:00:00+00:00")
    running = jobs.trigger(ANN, {"prompts": ["a"]})["jobId"]
    jobs.jobs.update(running, lambda j: j.move_to(Status.GENERATING))
    stitching = jobs.trigger(ANN, {"prompts": ["b"]})["jobId"]

    def to_stitching(job: Job) -> None:
        job.move_to(Status.GENERATING)
        job.start_segment(0)
        job.complete_segment(0, "mem://s.mp4")
        job.move_to(Status.STITCHING)
        job.record_stitch_job("projects/p/locations/l/jobs/t1")
        job.stitch_lease_until = "2026-11-29T10:05:00.000Z"  # the poller that took it died

    jobs.jobs.update(stitching, to_stitching)
    jobs.clock.now += timedelta(minutes=95)  # type: ignore[attr-defined]

    assert jobs.sweep() == {"requeued": 0, "failed": 1, "repolled": 1}
    stopped = jobs.job(ANN, running)
    assert (stopped.status, stopped.error_step) == (Status.FAILED, "sweep")
    assert stopped.error is not None and "the run stopped" in stopped.error
    polled = jobs.job(ANN, stitching)
    assert (polled.status, polled.stitch_lease_until, polled.stitch_poll_attempts) == (Status.STITCHING, None, 1)
