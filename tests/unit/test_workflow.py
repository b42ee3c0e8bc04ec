"""The workflow driven by the local runner, with fakes behind every port: what only the local
runner does (backoff, concurrency, sleeps, resume of a finished job). The scenarios every engine
must pass alike are in tests/contract/test_engines.py."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from longform.errors import PermanentError, TransientError
from longform.job import Job, SegmentStatus, Status
from longform.local_runner import LocalRunner, RetryPolicy
from longform.ports import MediaExpectation, Operation, SegmentSpec, StitchJob, StitchSpec, final_key, segment_key
from tests.conftest import FakeWorld
from tests.fakes import FakeStitcher, FakeVideoModel, InMemoryBlobStore, SimClock


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing catches it."""


def test_model_is_asked_with_the_request_settings(world: FakeWorld) -> None:
    job_id = world.submit(
        1, segmentSeconds=6, aspectRatio="9:16", resolution="1080p", generateAudio=False, seed=42, negativePrompt="fog"
    )
    world.runner().run(job_id)
    assert world.model.started == [
        SegmentSpec(
            job_id=job_id,
            user_id="user-1",
            index=0,
            prompt="scene 0",
            seconds=6,
            aspect_ratio="9:16",
            resolution="1080p",
            generate_audio=False,
            output_key=segment_key(job_id, 0),
            seed=42,
            negative_prompt="fog",
            first_frame_key=None,
        )
    ]


def test_unchained_segments_run_concurrently_within_the_limit(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, seconds=0.05))
    job_id = world.submit(6, chain=False)
    job = world.runner(concurrency=3).run(job_id)

    assert job.status is Status.COMPLETED
    assert sorted(world.model.started_indexes()) == list(range(6))
    assert all(s.first_frame_key is None for s in world.model.started)
    assert world.frames.calls == []
    assert world.model.max_running == 3
    # stitched in prompt order whatever order they finished in
    assert world.stitcher.calls[0][1] == [segment_key(job_id, i) for i in range(6)]


def test_progress_is_written_after_each_segment_and_never_goes_down(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    seen: list[tuple[str, int]] = []
    world = make_world(blobs=blobs)

    def watch(spec: SegmentSpec) -> None:
        job = world.jobs.get(spec.job_id)
        seen.append((job.status, job.progress))

    world.model = FakeVideoModel(blobs, on_start=watch)
    world.runner().run(world.submit(3))
    assert seen == [(Status.GENERATING, 0), (Status.GENERATING, 30), (Status.GENERATING, 60)]


def test_long_operations_are_polled_inside_one_step_a_few_seconds_apart(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=2))
    job = world.runner().run(world.submit(2))
    assert job.status is Status.COMPLETED
    assert world.clock.sleeps == [5, 5, 5, 5]  # two not-done polls per segment, 5 s apart
    assert world.sleeps == []  # no step failed, none was retried
    assert step_ids(world, job.job_id) == [
        "start",
        "segment-0-start",
        "segment-0-poll-0",
        "segment-0-last-frame",
        "segment-1-start",
        "segment-1-poll-0",
        *STITCH_STEPS,
    ]


# -- the poll step, on a simulated clock: poll 5 s apart, a step's budget 60 s (tests/conftest.py) ------

STITCH_STEPS = ["stitch-begin", "stitch-start", "stitch-record", "stitch-poll-0", "stitch-check", "stitch-link"]
STITCH_STEPS += ["stitch-complete"]


def step_ids(world: FakeWorld, job_id: str) -> list[str]:
    """The steps the runner memoized, in the order they finished."""
    with world.db.connect() as conn:
        rows = conn.execute("SELECT step_id FROM steps WHERE job_id = ? ORDER BY rowid", (job_id,)).fetchall()
    return [row[0] for row in rows]


def timed_world(make_world: Callable[..., FakeWorld], latency: float, floor: float = 30.0) -> FakeWorld:
    """A world whose model finishes ``latency`` seconds after each start, and says it never
    finishes sooner than ``floor``."""
    blobs, clock = InMemoryBlobStore(), SimClock()
    fake = FakeVideoModel(blobs, clock=clock, latency=latency, earliest_done_seconds=floor)
    return make_world(blobs=blobs, clock=clock, model=fake)


def test_a_poll_step_waits_for_the_floor_then_polls_until_the_operation_is_done(
    make_world: Callable[..., FakeWorld],
) -> None:
    world = timed_world(make_world, latency=52)
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED
    [polled] = world.model.polled_at.values()
    assert polled == [30, 35, 40, 45, 50, 55]  # none before the floor; the last one saw it done, 3 s late
    assert [s for s in step_ids(world, job.job_id) if s.startswith("segment")] == [
        "segment-0-start",
        "segment-0-poll-0",
    ]


def test_a_poll_step_hands_back_at_its_budget_and_the_next_goes_on_polling(
    make_world: Callable[..., FakeWorld],
) -> None:
    world = timed_world(make_world, latency=100)
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED
    [polled] = world.model.polled_at.values()
    first_step = [30, 35, 40, 45, 50, 55, 60]  # the budget ends at 60 s
    second_step = [65, 70, 75, 80, 85, 90, 95, 100]  # the next step, a tick later, until it is done
    assert polled == first_step + second_step
    assert [s for s in step_ids(world, job.job_id) if s.startswith("segment")] == [
        "segment-0-start",
        "segment-0-poll-0",
        "segment-0-poll-1",
    ]
    assert world.sleeps == []  # handing back is no failure


def test_the_pipeline_may_set_the_floor_lower_than_the_models(make_world: Callable[..., FakeWorld]) -> None:
    world = timed_world(make_world, latency=4, floor=30)
    pipeline = dataclasses.replace(world.pipeline(), poll_floor_seconds=2)
    runner = LocalRunner(pipeline, world.db, RetryPolicy(3, 1.0, 60.0), 4, world.sleeps.append)
    assert runner.run(world.submit(1)).status is Status.COMPLETED
    [polled] = world.model.polled_at.values()
    assert polled == [2, 7]


def test_a_transient_poll_error_inside_the_step_is_a_missed_poll_tried_again_at_the_next_tick(
    make_world: Callable[..., FakeWorld],
) -> None:
    world = timed_world(make_world, latency=0, floor=0)

    class FlakyPolls(FakeVideoModel):
        def poll(self, operation: str) -> Operation:
            result = super().poll(operation)
            if self.polls[operation] <= 2:
                raise TransientError("503 Service Unavailable")
            return result

    world.model = FlakyPolls(world.blobs, clock=world.clock)
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED and [s.attempts for s in job.segments] == [1]
    [polled] = world.model.polled_at.values()
    assert polled == [0, 5, 10]  # two missed, the third answered
    assert world.sleeps == []  # the step did not fail
    assert world.model.started_indexes() == [0]


def test_a_check_or_a_write_that_fails_in_the_poll_step_is_tried_again_without_polling_again(
    make_world: Callable[..., FakeWorld],
) -> None:
    world = timed_world(make_world, latency=0, floor=0)
    real_check, real_update = world.checker.check, world.jobs.update
    failed: list[str] = []

    def check(key: str, expected: MediaExpectation, *, decode_video: bool = True) -> None:
        if "segments" in key and "check" not in failed:
            failed.append("check")
            raise TransientError("the download was cut")
        real_check(key, expected, decode_video=decode_video)

    def update(job_id: str, change: Callable[[Job], None], limits: object = None) -> Job:
        job = real_update(job_id, change)
        if job.segments[0].status is SegmentStatus.COMPLETED and "write" not in failed:
            failed.append("write")  # written, but the answer is lost: the write is made again
            raise TransientError("deadline exceeded")
        return job

    world.checker.check = check  # type: ignore[method-assign]
    world.jobs.update = update  # type: ignore[assignment, method-assign]
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED and failed == ["check", "write"]
    assert sum(world.model.polls.values()) == 1  # done at the first poll; only what failed was redone
    assert [(s.attempts, s.billed_generations) for s in job.segments] == [(1, 1)]  # billed once
    assert world.sleeps == []


def test_a_poll_step_whose_every_poll_failed_fails_and_is_retried(make_world: Callable[..., FakeWorld]) -> None:
    world = timed_world(make_world, latency=0, floor=0)

    class Down(FakeVideoModel):
        def poll(self, operation: str) -> Operation:
            result = super().poll(operation)
            if self.polls[operation] <= 13:  # every tick of the first step: 0, 5, … 60 s
                raise TransientError("503 Service Unavailable")
            return result

    world.model = Down(world.blobs, clock=world.clock)
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED
    assert len(world.sleeps) == 1  # the step failed once; the runner's backoff, then its retry
    assert sum(world.model.polls.values()) == 14


def test_a_start_whose_answer_was_lost_is_asked_again_but_counted_once(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()

    class LosesAnAnswer(FakeVideoModel):
        def start(self, spec: SegmentSpec) -> str:
            name = super().start(spec)
            if len(self.started) == 1:
                raise TransientError("the answer was lost")  # the model accepted it
            return name

    world = make_world(blobs=blobs, model=LosesAnAnswer(blobs))
    real_update = world.jobs.update
    writes: list[int] = []

    def update(job_id: str, change: Callable[[Job], None], limits: object = None) -> Job:
        writes.append(1)
        if len(writes) == 2:  # the scene's first begin write: tried again in the step
            raise TransientError("contention")
        return real_update(job_id, change)

    world.jobs.update = update  # type: ignore[assignment, method-assign]
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 0]  # the lost answer, then the one that came back
    assert [s.attempts for s in job.segments] == [1]  # the start step ran twice: one attempt
    assert world.clock.sleeps == [1.0]  # the begin write, tried again in the step
    assert len(world.sleeps) == 1  # the start step, retried by the runner once


def test_an_operation_that_never_finishes_fails_the_job(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=10_000))
    job = world.runner().run(world.submit(2))
    assert job.status is Status.FAILED
    assert job.error == "scene 1: the model did not finish within 4 minutes"
    polls = [s for s in step_ids(world, job.job_id) if "poll" in s]
    assert polls == [f"segment-0-poll-{n}" for n in range(4)]  # 240 s in steps of 60 s


def test_transient_failures_are_retried_with_growing_backoff(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    model = FakeVideoModel(blobs, failures={1: [TransientError("503"), TransientError("503")]})
    world = make_world(blobs=blobs, model=model)
    job = world.runner(attempts=3).run(world.submit(3))

    assert job.status is Status.COMPLETED
    assert [s.attempts for s in job.segments] == [1, 1, 1]  # one generation each: the start was retried
    assert world.model.started_indexes() == [0, 1, 1, 1, 2]
    first, second = world.sleeps
    assert 0.5 <= first <= 1.5 and 1.0 <= second <= 3.0  # base·2^(n−1) with ±50 % jitter


def test_retry_after_from_the_service_is_honoured(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    model = FakeVideoModel(blobs, failures={0: [TransientError("429", retry_after=30.0)]})
    world = make_world(blobs=blobs, model=model)
    assert world.runner().run(world.submit(1)).status is Status.COMPLETED
    assert world.sleeps == [30.0]


def test_an_unchained_failure_keeps_the_segments_that_finished(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    model = FakeVideoModel(blobs, failures={2: [PermanentError("bad")]})
    world = make_world(blobs=blobs, model=model)
    job = world.runner(concurrency=1).run(world.submit(5, chain=False))
    assert job.status is Status.FAILED and job.error_step == "segment-2-start"
    assert [s.status for s in job.segments[:2]] == [SegmentStatus.COMPLETED] * 2
    assert sorted(world.model.started_indexes()) == [0, 1, 2]  # nothing new starts after a failure


def test_a_finished_job_is_left_alone_by_resume(world: FakeWorld) -> None:
    job_id = world.submit(2)
    world.runner().run(job_id)
    world.runner().run(job_id)
    assert world.model.started_indexes() == [0, 1]


def test_jobs_run_side_by_side_in_one_process(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, seconds=0.01))
    ids = [world.submit(3, chain=n % 2 == 0) for n in range(4)]
    runner = world.runner()
    threads = [threading.Thread(target=runner.run, args=(job_id,)) for job_id in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [world.jobs.get(job_id).status for job_id in ids] == [Status.COMPLETED] * 4


def test_the_stitcher_is_told_the_size_length_and_audio_of_the_segments(world: FakeWorld) -> None:
    job_id = world.submit(2, segmentSeconds=6, aspectRatio="9:16", generateAudio=False)
    world.runner().run(job_id)
    [spec] = world.stitcher.specs
    assert (spec.job_id, spec.user_id, spec.output_key) == (job_id, "user-1", final_key(job_id))
    assert spec.segment_keys == (segment_key(job_id, 0), segment_key(job_id, 1))
    assert (spec.width, spec.height, spec.segment_seconds, spec.audio) == (720, 1280, 6, False)


def test_a_completed_job_gets_a_signed_url_when_the_store_can_sign(world: FakeWorld) -> None:
    job = world.runner().run(world.submit(1))
    assert job.video_url == f"https://signed.example/{final_key(job.job_id)}?expires={72 * 3600}"


def test_without_signing_the_job_keeps_only_its_storage_uri(make_world: Callable[..., FakeWorld]) -> None:
    world = make_world(blobs=InMemoryBlobStore(can_sign=False))
    job = world.runner().run(world.submit(1))
    assert job.status is Status.COMPLETED
    assert (job.video_uri, job.video_url) == (f"mem://{final_key(job.job_id)}", None)


def test_veo_is_first_polled_30_s_after_its_start_and_the_preview_renderer_at_once(world: FakeWorld) -> None:
    from longform.adapters.preview_video_model import PreviewVideoModel
    from longform.adapters.veo_video_model import VeoVideoModel

    veo = VeoVideoModel(None, "veo-3.1-fast-generate-001", "bucket")  # type: ignore[arg-type]
    assert dataclasses.replace(world.pipeline(), model=veo).floor_seconds() == 30
    assert dataclasses.replace(world.pipeline(), model=PreviewVideoModel(world.blobs)).floor_seconds() == 0
    assert dataclasses.replace(world.pipeline(), model=veo, poll_floor_seconds=1).floor_seconds() == 1


def test_the_in_process_stitch_is_polled_the_same_way(make_world: Callable[..., FakeWorld]) -> None:
    world = timed_world(make_world, latency=0, floor=0)
    polled_at: list[float] = []

    class SlowStitcher(FakeStitcher):
        def start(self, spec: StitchSpec) -> str:
            self.began = world.clock()
            return super().start(spec)

        def poll(self, name: str) -> StitchJob:
            polled_at.append(world.clock() - self.began)
            if polled_at[-1] < 70:
                return StitchJob(name, done=False)
            return super().poll(name)

    world.stitcher = SlowStitcher(world.blobs)
    job = world.runner().run(world.submit(1))

    assert job.status is Status.COMPLETED
    assert polled_at == [*range(0, 61, 5), 65, 70]  # at once, every 5 s; handed back at 60 s
    assert [s for s in step_ids(world, job.job_id) if s.startswith("stitch-poll")] == ["stitch-poll-0", "stitch-poll-1"]
