"""The Inngest functions run in-process by the SDK's mock executor (``inngest.experimental.mocked``),
with fakes behind every port: what is particular to Inngest (the events sent, step planning, the
error mapping at the step boundary). The scenarios every engine must pass alike are in
tests/contract/test_engines.py.

The mock plans and memoizes steps the way Inngest does, but it retries every error (a
NonRetriableError too, up to ``retries``), counts attempts across the whole run, and never calls
``on_failure``: these tests call the failure handler through the mock with the event Inngest sends.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import inngest
import pytest
from inngest.experimental import mocked

from longform.cloud import generate_long_form_video, stitch_video
from longform.cloud.composition import Cloud
from longform.cloud.inngest_client import JOB_REQUESTED, STITCH_REQUESTED
from longform.cloud.inngest_steps import Failure, InngestSteps, failure_message, marks_job_failed, parse_failure
from longform.config import Settings
from longform.errors import PermanentError, TransientError
from longform.job import SegmentStatus, Status
from longform.logs import current_context
from longform.ports import final_key, frame_key, segment_key
from tests.conftest import FakeWorld
from tests.fakes import FakeVideoModel, InMemoryBlobStore

GENERATE_ID = "longform-generate_long_form_video"
STITCH_ID = "longform-stitch_video"


class RecordingInngest(mocked.Inngest):
    """The mock client, keeping the events the functions send (``ctx.step.send_event``)."""

    def __init__(self) -> None:
        super().__init__(app_id="longform", is_production=False)
        self.sent: list[inngest.Event] = []

    def send_sync(self, events: inngest.Event | list[inngest.Event], *, skip_middleware: bool = False) -> list[str]:
        self.sent.extend(events if isinstance(events, list) else [events])
        return super().send_sync(events, skip_middleware=skip_middleware)


@pytest.fixture
def client() -> RecordingInngest:
    return RecordingInngest()


def cloud_of(world: FakeWorld, client: mocked.Inngest, stitch_backend: str = "ffmpeg") -> Cloud:
    """The composition the functions run in: the world's fakes, the mock client."""
    return Cloud(Settings(stitch_backend=stitch_backend), inngest=client, pipeline=world.pipeline())


def generate(world: FakeWorld, job_id: str, client: RecordingInngest) -> Any:
    event = inngest.Event(name=JOB_REQUESTED, data={"jobId": job_id, "userId": "user-1"}, id=job_id)
    return mocked.trigger(generate_long_form_video.create(cloud_of(world, client)), event, client)


def stitch(world: FakeWorld, event: inngest.Event, client: RecordingInngest, stitch_backend: str = "ffmpeg") -> Any:
    return mocked.trigger(stitch_video.create(cloud_of(world, client, stitch_backend)), event, client)


def fail_through_mock(on_failure: Callable[[inngest.ContextSync], None], error: Exception, event: inngest.Event) -> Any:
    """Run an on_failure handler as Inngest would: a function on ``inngest/function.failed``."""
    failure = mocked.Inngest(app_id="longform", is_production=False).create_function(
        fn_id="failure", trigger=inngest.TriggerEvent(event="inngest/function.failed")
    )(on_failure)
    failed = inngest.Event(
        name="inngest/function.failed",
        data={
            "error": {"name": type(error).__name__, "message": str(error), "stack": None},
            "event": event.model_dump(),
            "function_id": GENERATE_ID,
            "run_id": "01JRUN",
        },
    )
    return mocked.trigger(failure, failed, mocked.Inngest(app_id="longform", is_production=False))


def test_a_run_makes_every_segment_in_order_then_asks_for_the_stitch(
    world: FakeWorld, client: RecordingInngest
) -> None:
    job_id = world.submit(3)
    result = generate(world, job_id, client)

    assert result.status is mocked.Status.COMPLETED, result.error
    keys = [segment_key(job_id, i) for i in range(3)]
    assert result.output == {"jobId": job_id, "segmentKeys": keys}
    assert world.model.started_indexes() == [0, 1, 2]
    assert [s.first_frame_key for s in world.model.started] == [None, frame_key(job_id, 0), frame_key(job_id, 1)]
    job = world.jobs.get(job_id)
    assert job.status is Status.GENERATING and job.progress == 90
    assert [(s.status, s.attempts) for s in job.segments] == [(SegmentStatus.COMPLETED, 1)] * 3
    [stitch] = client.sent
    assert (stitch.name, stitch.id) == (STITCH_REQUESTED, f"{job_id}-stitch")
    assert stitch.data == {"jobId": job_id, "userId": "user-1", "segmentKeys": keys, "runKey": job_id}


def test_each_step_logs_with_the_job_user_step_and_attempt(
    make_world: Callable[..., FakeWorld], client: RecordingInngest
) -> None:
    blobs = InMemoryBlobStore()
    seen: list[dict[str, Any]] = []
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, on_start=lambda _: seen.append(current_context())))
    job_id = world.submit(1)
    generate(world, job_id, client)
    assert seen == [{"jobId": job_id, "userId": "user-1", "step": "segment-0-start", "attempt": 0}]


def test_stitch_video_completes_the_job_when_it_stitches_in_the_function(
    world: FakeWorld, client: RecordingInngest
) -> None:
    job_id = world.submit(3)
    generate(world, job_id, client)
    [stitch_event] = client.sent

    result = stitch(world, stitch_event, client)

    assert result.status is mocked.Status.COMPLETED, result.error
    assert world.stitcher.calls == [(job_id, [segment_key(job_id, i) for i in range(3)], final_key(job_id))]
    job = world.jobs.get(job_id)
    assert (job.status, job.progress, job.video_uri) == (Status.COMPLETED, 100, f"mem://{final_key(job_id)}")
    assert job.stitch_job == f"stitch/{final_key(job_id)}"


def test_stitch_video_leaves_a_transcoder_job_to_the_poller(world: FakeWorld, client: RecordingInngest) -> None:
    job_id = world.submit(2)
    generate(world, job_id, client)

    result = stitch(world, client.sent[0], client, stitch_backend="transcoder")

    assert result.status is mocked.Status.COMPLETED, result.error
    job = world.jobs.get(job_id)
    assert (job.status, job.progress, job.stitch_job) == (Status.STITCHING, 90, f"stitch/{final_key(job_id)}")


def test_a_failure_reported_for_a_cancelled_job_leaves_it_cancelled(world: FakeWorld, client: RecordingInngest) -> None:
    job_id = world.submit(2)
    world.jobs.update(job_id, lambda j: j.move_to(Status.CANCELLED))
    event = inngest.Event(name=JOB_REQUESTED, data={"jobId": job_id, "userId": "user-1"})

    fail_through_mock(
        marks_job_failed(lambda: world.jobs),
        inngest.NonRetriableError("[segment-0-poll-0] x"),
        event,
    )

    assert world.jobs.get(job_id).status is Status.CANCELLED


def test_unchained_segments_are_planned_as_parallel_steps(
    make_world: Callable[..., FakeWorld], client: RecordingInngest
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs)
    polls_seen_at_start: list[int] = []
    model = FakeVideoModel(
        blobs, polls_until_done=1, on_start=lambda _: polls_seen_at_start.append(sum(model.polls.values()))
    )
    world.model = model
    job_id = world.submit(4, chain=False)

    result = generate(world, job_id, client)

    assert result.status is mocked.Status.COMPLETED, result.error
    assert sorted(model.started_indexes()) == [0, 1, 2, 3]
    assert polls_seen_at_start == [0, 0, 0, 0]  # every start was planned before any poll ran
    assert world.frames.calls == []
    keys = [segment_key(job_id, i) for i in range(4)]
    assert client.sent[0].data["segmentKeys"] == keys  # prompt order, whatever order they finished in
    assert [s.status for s in world.jobs.get(job_id).segments] == [SegmentStatus.COMPLETED] * 4


# -- the mapping at the step boundary ----------------------------------------------------------


def run_one_step(body: Callable[[], object]) -> Any:
    """A one-step function with no retries around ``InngestSteps.run``: the mapped error comes back."""
    fn = mocked.Inngest(app_id="longform", is_production=False).create_function(
        fn_id="one-step", retries=0, trigger=inngest.TriggerEvent(event="test/one-step")
    )(lambda ctx: InngestSteps(ctx).run("the-step", body))
    return mocked.trigger(fn, inngest.Event(name="test/one-step"), mocked.Inngest(app_id="longform"))


def raising(exc: Exception) -> Callable[[], object]:
    def body() -> object:
        raise exc

    return body


def test_a_permanent_error_becomes_non_retriable_with_the_step_id() -> None:
    result = run_one_step(raising(PermanentError("bad media")))
    assert isinstance(result.error, inngest.NonRetriableError)
    assert str(result.error) == "[the-step] bad media"


def test_a_bug_in_a_step_is_not_retried_either() -> None:
    result = run_one_step(raising(KeyError("userId")))
    assert isinstance(result.error, inngest.NonRetriableError)
    assert str(result.error) == "[the-step] 'userId'"


def test_a_transient_error_is_left_for_inngest_to_retry() -> None:
    result = run_one_step(raising(TransientError("503 Service Unavailable")))
    assert type(result.error) is TransientError
    assert str(result.error) == "[the-step] 503 Service Unavailable"


def test_a_transient_error_with_retry_after_asks_inngest_to_wait() -> None:
    before = datetime.datetime.now()
    result = run_one_step(raising(TransientError("429 Too Many Requests", retry_after=30)))
    assert isinstance(result.error, inngest.RetryAfterError)
    assert str(result.error) == "[the-step] 429 Too Many Requests"
    assert datetime.timedelta(seconds=29) < result.error.retry_after - before < datetime.timedelta(seconds=31)


def test_failure_messages_carry_the_step_id_to_on_failure() -> None:
    message = failure_message("segment-12-poll-3", "scene 13: [blocked]\nby policy")
    assert parse_failure(message) == ("segment-12-poll-3", "scene 13: [blocked]\nby policy")
    assert parse_failure("scene 2: the model did not finish after 4 polls") == (
        None,
        "scene 2: the model did not finish after 4 polls",
    )
    event = inngest.Event(
        name="inngest/function.failed",
        data={"error": {"name": "StepError", "message": message}, "event": {"data": {"jobId": "j1"}}},
    )
    assert Failure.from_event(event) == Failure("j1", "segment-12-poll-3", "scene 13: [blocked]\nby policy")


def test_a_run_without_a_job_id_fails_without_touching_any_job(world: FakeWorld, client: RecordingInngest) -> None:
    fn = generate_long_form_video.create(cloud_of(world, client))
    result = mocked.trigger(fn, inngest.Event(name=JOB_REQUESTED, data={}), client)
    assert isinstance(result.error, inngest.NonRetriableError)
    assert world.jobs.jobs == {}
