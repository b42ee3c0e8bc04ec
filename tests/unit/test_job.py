import pytest

from longform.errors import IllegalTransition, JobBusy
from longform.job import Job, Reservation, SegmentStatus, Status
from longform.request import validate_request


def new_job(prompts: int = 3) -> Job:
    return Job.new(validate_request({"prompts": [f"scene {i}" for i in range(prompts)]}), "user-1")


def job_in(status: Status) -> Job:
    job = new_job()
    path = {
        Status.QUEUED: [],
        Status.GENERATING: [Status.GENERATING],
        Status.STITCHING: [Status.GENERATING, Status.STITCHING],
        Status.COMPLETED: [Status.GENERATING, Status.STITCHING, Status.COMPLETED],
        Status.FAILED: [Status.FAILED],
        Status.CANCELLED: [Status.CANCELLED],
    }[status]
    for step in path:
        job.move_to(step)
    return job


LEGAL = {
    (Status.QUEUED, Status.GENERATING),
    (Status.GENERATING, Status.STITCHING),
    (Status.STITCHING, Status.COMPLETED),
    *((s, Status.FAILED) for s in (Status.QUEUED, Status.GENERATING, Status.STITCHING)),
    *((s, Status.CANCELLED) for s in (Status.QUEUED, Status.GENERATING, Status.STITCHING)),
    # a replayed step moving to the status the job already has
    *((s, s) for s in (Status.QUEUED, Status.GENERATING, Status.STITCHING)),
}


@pytest.mark.parametrize("target", list(Status))
@pytest.mark.parametrize("source", list(Status))
def test_only_legal_transitions_are_allowed(source: Status, target: Status) -> None:
    job = job_in(source)
    if (source, target) in LEGAL:
        job.move_to(target)
        assert job.status is target
    else:
        with pytest.raises(IllegalTransition):
            job.move_to(target)
        assert job.status is source


def test_new_job_is_queued_with_one_pending_segment_per_prompt() -> None:
    job = new_job(3)
    assert (job.status, job.progress) == (Status.QUEUED, 0)
    assert [(s.index, s.prompt, s.status, s.attempts) for s in job.segments] == [
        (i, f"scene {i}", SegmentStatus.PENDING, 0) for i in range(3)
    ]
    assert "createdAt" in job.timings


def test_progress_never_goes_down() -> None:
    job = job_in(Status.GENERATING)
    job.set_progress(40)
    job.set_progress(40)
    with pytest.raises(IllegalTransition):
        job.set_progress(39)
    assert job.progress == 40


def test_progress_100_only_when_completed() -> None:
    job = job_in(Status.STITCHING)
    with pytest.raises(IllegalTransition):
        job.set_progress(100)
    job.complete("file:///v.mp4")
    assert (job.status, job.progress, job.video_uri) == (Status.COMPLETED, 100, "file:///v.mp4")


@pytest.mark.parametrize("value", [-1, 101])
def test_progress_stays_within_0_to_100(value: int) -> None:
    with pytest.raises(IllegalTransition):
        job_in(Status.GENERATING).set_progress(value)


def test_segments_fill_progress_up_to_90_then_stitching_and_completion() -> None:
    job = job_in(Status.GENERATING)
    seen = []
    for i in range(3):
        job.start_segment(i)
        job.complete_segment(i, f"file:///{i}.mp4")
        seen.append(job.progress)
    assert seen == [30, 60, 90]
    job.move_to(Status.STITCHING)
    assert job.progress == 90
    assert job.status_message() == "Stitching Masterpiece..."


def test_each_start_of_a_segment_counts_an_attempt_and_keeps_the_first_start_time() -> None:
    job = job_in(Status.GENERATING)
    job.start_segment(1, now="2026-01-01T00:00:00.000Z")
    job.start_segment(1, now="2026-01-01T00:00:05.000Z")
    assert job.segments[1].attempts == 2
    assert job.segments[1].started_at == "2026-01-01T00:00:00.000Z"


def test_a_numbered_attempt_begun_again_is_counted_and_billed_once() -> None:
    job = job_in(Status.GENERATING)
    job.start_segment(1, attempt=1)
    job.start_segment(1, billed_usd=1.2, attempt=2)  # the first made a broken video: paid for here
    job.start_segment(1, billed_usd=1.2, attempt=2)  # its step retried after the write went through
    assert (job.segments[1].attempts, job.segments[1].billed_generations) == (2, 1)
    assert job.segments[1].cost_usd == 1.2


def test_segments_change_only_while_generating() -> None:
    with pytest.raises(IllegalTransition):
        new_job().start_segment(0)
    job = job_in(Status.GENERATING)
    job.start_segment(0)
    job.complete_segment(0, "file:///0.mp4")
    with pytest.raises(IllegalTransition):
        job.start_segment(0)


def test_status_message_names_the_scene_being_made() -> None:
    job = job_in(Status.GENERATING)
    assert job.status_message() == "Imaginating Scene... scene 1 of 3"
    job.start_segment(0)
    job.complete_segment(0, "file:///0.mp4")
    assert job.status_message() == "Imaginating Scene... scene 2 of 3"


def test_failure_records_reason_and_step_and_keeps_segments() -> None:
    job = job_in(Status.GENERATING)
    job.start_segment(0)
    job.complete_segment(0, "file:///0.mp4")
    job.fail("model said no", "segment-1-start")
    assert (job.status, job.error, job.error_step) == (Status.FAILED, "model said no", "segment-1-start")
    assert job.segments[0].uri == "file:///0.mp4"
    assert "failedAt" in job.timings
    with pytest.raises(IllegalTransition):
        job.fail("again")


def test_cancelling_marks_every_scene_not_made_cancelled_and_keeps_the_made_ones() -> None:
    job = job_in(Status.GENERATING)
    job.start_segment(0)
    job.complete_segment(0, "file:///0.mp4")
    job.start_segment(1)
    job.move_to(Status.CANCELLED)
    assert [(s.status, s.attempts) for s in job.segments] == [
        (SegmentStatus.COMPLETED, 1),
        (SegmentStatus.CANCELLED, 1),
        (SegmentStatus.CANCELLED, 0),
    ]
    assert job.segments[0].uri == "file:///0.mp4"


@pytest.mark.parametrize("end", [Status.FAILED, Status.CANCELLED])
def test_a_job_that_ends_early_gives_back_the_seconds_of_the_scenes_it_did_not_make(end: Status) -> None:
    job = job_in(Status.GENERATING)  # 3 scenes of 8 s
    job.budget = Reservation(day="2026-11-29", seconds=24)
    job.start_segment(0)
    job.complete_segment(0, "file:///0.mp4")
    job.start_segment(1)  # started, not made
    job.move_to(end)
    assert job.budget.returned_seconds == 16


def test_a_failed_job_resumes_in_place_keeping_what_was_made_and_its_history() -> None:
    job = job_in(Status.GENERATING)
    job.budget = Reservation(day="2026-11-29", seconds=24)
    job.start_segment(0)
    job.complete_segment(0, "file:///0.mp4")
    job.start_segment(1)
    job.fail_segment(1, "blocked")
    job.fail("blocked", "segment-1-start", now="2026-11-29T10:00:00.000Z")
    progress = job.progress

    job.resume(now="2026-11-29T11:00:00.000Z")

    assert (job.status, job.progress, job.error, job.error_step) == (Status.GENERATING, progress, None, None)
    assert [(s.status, s.attempts, s.error) for s in job.segments] == [
        (SegmentStatus.COMPLETED, 1, None),
        (SegmentStatus.PENDING, 1, None),
        (SegmentStatus.PENDING, 0, None),
    ]
    [resume] = job.resumes
    assert (resume.at, resume.failed_at, resume.error, resume.error_step) == (
        "2026-11-29T11:00:00.000Z",
        "2026-11-29T10:00:00.000Z",
        "blocked",
        "segment-1-start",
    )
    assert job.budget.returned_seconds == 0 and "failedAt" not in job.timings
    assert job.run_key == f"{job.job_id}-r1"


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.FAILED])
def test_only_a_failed_job_can_be_resumed(status: Status) -> None:
    job = job_in(status)
    with pytest.raises(IllegalTransition):
        job.resume()
    assert job.status is status


def test_one_holder_at_a_time_until_its_lease_runs_out_or_it_is_gone() -> None:
    job = job_in(Status.GENERATING)
    assert job.is_interrupted(now="2026-11-29T10:00:00.000Z")  # nobody runs it
    job.take_lease("host:1", until="2026-11-29T10:00:30.000Z", now="2026-11-29T10:00:00.000Z")
    assert not job.is_interrupted(now="2026-11-29T10:00:10.000Z")
    with pytest.raises(JobBusy, match="host:1"):
        job.take_lease("host:2", until="2026-11-29T10:00:40.000Z", now="2026-11-29T10:00:10.000Z")
    job.take_lease("host:1", until="2026-11-29T10:00:40.000Z", now="2026-11-29T10:00:10.000Z")  # renewed
    assert job.is_interrupted(now="2026-11-29T10:00:41.000Z")  # ran out: the holder stopped
    assert job.is_interrupted(now="2026-11-29T10:00:11.000Z", gone=lambda holder: holder == "host:1")
    job.take_lease("host:2", until="2026-11-29T10:00:50.000Z", now="2026-11-29T10:00:11.000Z", gone=lambda h: True)
    job.release_lease("host:1")  # not its lease any more: nothing happens
    assert job.lease is not None and job.lease.holder == "host:2"
    job.release_lease("host:2")
    assert job.lease is None
    job.move_to(Status.CANCELLED)
    assert not job.is_interrupted()  # a final job is not interrupted


def test_job_round_trips_through_json_with_camel_case_fields() -> None:
    job = job_in(Status.GENERATING)
    data = job.to_json()
    assert {"jobId", "userId", "status", "progress", "request", "segments", "timings", "videoUri", "error"} <= set(data)
    assert set(data["segments"][0]) >= {"index", "prompt", "status", "uri", "attempts", "startedAt", "completedAt"}
    assert Job.from_json(data) == job
