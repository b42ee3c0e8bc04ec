"""The workflow driven by the local runner, with fakes behind every port: what only the local
runner does (backoff, concurrency, sleeps, resume of a finished job). The scenarios every engine
must pass alike are in tests/contract/test_engines.py."""

from __future__ import annotations

import threading
from collections.abc import Callable

from longform.errors import PermanentError, TransientError
from longform.job import SegmentStatus, Status
from longform.ports import SegmentSpec, final_key, segment_key
from tests.conftest import FakeWorld
from tests.fakes import FakeVideoModel, InMemoryBlobStore


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


def test_long_operations_are_polled_with_durable_sleeps_between(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=2))
    job = world.runner().run(world.submit(2))
    assert job.status is Status.COMPLETED
    assert world.sleeps == [5, 7.5, 5, 7.5]  # two not-done polls per segment, waits growing by half


def test_an_operation_that_never_finishes_fails_the_job(make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=99))
    job = world.runner().run(world.submit(2))
    assert job.status is Status.FAILED
    assert "did not finish after 4 polls" in (job.error or "")


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
