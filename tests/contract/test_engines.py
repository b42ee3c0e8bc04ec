"""One scenario suite, two engines: the local runner (steps memoized in SQLite, run in this
process) and Inngest (the functions served by the SDK's Flask integration, driven over its HTTP
protocol by the dev server stand-in, which memoizes steps, retries with backoff, runs
``on_failure`` and routes ``video/stitch.requested`` to ``stitch_video``). The same fakes sit
behind the ports, and each scenario asserts the same outcome on both — including what was
generated, because every model call is paid for.

A crash is a ``Crash`` (a BaseException: nothing catches it). Locally the process dies and
``longform resume`` runs the job again; under Inngest the function instance dies mid-request, the
executor sees the connection drop and calls again with the steps it has memoized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import flask
import httpx
import inngest
import pytest

from devtools.inngest_standin import InngestDevServer
from longform.cloud import inngest_app
from longform.cloud.composition import Cloud
from longform.cloud.generate_long_form_video import RETRIES
from longform.cloud.inngest_client import APP_ID, JOB_REQUESTED
from longform.config import Settings
from longform.errors import GenerationFailed, PermanentError, QuotaExceeded, TransientError
from longform.job import STOPPED, Job, SegmentStatus, Status
from longform.ports import Operation, SegmentSpec, StitchSpec, final_key, frame_key, segment_key
from longform.prices import PRICES
from tests.conftest import PRICING, FakeWorld
from tests.fakes import BROKEN, FakeStitcher, FakeVideoModel, InMemoryBlobStore

ATTEMPTS = RETRIES + 1  # per step, the first included, on both engines
APP_URL = "http://functions.local/"  # the Flask app, reached in-process (no server, no port)


class Crash(BaseException):
    """The process (or the function instance) dies here."""


class Engine(Protocol):
    name: str

    def run(self, world: FakeWorld, job_id: str) -> Job:
        """Run the job to its end (through a crash, as its engine would) and return it."""

    def resume(self, world: FakeWorld, job_id: str) -> Job:
        """Resume the failed job in place (as the resume use case does) and run it to its end."""


def resumed(world: FakeWorld, job_id: str) -> Job:
    return world.jobs.update(job_id, Job.resume)


class LocalEngine:
    name = "local"

    def run(self, world: FakeWorld, job_id: str) -> Job:
        try:
            return world.runner(attempts=ATTEMPTS).run(job_id)
        except Crash:
            return world.runner(attempts=ATTEMPTS).run(job_id)  # a new process: `longform resume`

    def resume(self, world: FakeWorld, job_id: str) -> Job:
        resumed(world, job_id)
        return self.run(world, job_id)


class _DroppedConnection(httpx.WSGITransport):
    """A function instance that dies mid-request: the caller sees the connection drop."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except Crash as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.") from exc


class InngestEngine:
    name = "inngest"

    def run(self, world: FakeWorld, job_id: str) -> Job:
        return self.drive(world, job_id, lambda dev, job: dev.send([requested(job)]))

    def resume(self, world: FakeWorld, job_id: str) -> Job:
        return self.drive(world, job_id, lambda dev, job: dev.send([requested(resumed(world, job_id))]))

    def drive(self, world: FakeWorld, job_id: str, begin: Callable[[InngestDevServer, Job], object]) -> Job:
        app = flask.Flask("inngest_api")  # what functions-framework does with main.inngest_api
        holder: dict[str, Cloud] = {}

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT"])
        @app.route("/<path:path>", methods=["GET", "POST", "PUT"])
        def inngest_api(path: str) -> flask.Response:
            return inngest_app.handle(flask.request, holder["cloud"])

        with InngestDevServer(sleep_factor=0, retry_base_seconds=0, transport=_DroppedConnection(app=app)) as dev:
            client = inngest.Inngest(
                app_id=APP_ID, is_production=False, api_base_url=dev.url, event_api_base_url=dev.url
            )
            holder["cloud"] = Cloud(Settings(stitch_backend="ffmpeg"), inngest=client, pipeline=world.pipeline())
            dev.sync(APP_URL)
            begin(dev, world.jobs.get(job_id))
            dev.wait_idle(timeout=60)
            failures = [r.error for r in dev.runs if r.status == "Failed" and r.error and "executor" in str(r.error)]
            assert not failures, failures  # the stand-in itself must not break
        return world.jobs.get(job_id)


def requested(job: Job) -> dict[str, object]:
    """The event the Inngest engine sends to start (or resume) a job's run."""
    data = {"jobId": job.job_id, "userId": job.user_id, "runKey": job.run_key}
    return {"name": JOB_REQUESTED, "data": data, "id": job.run_key}


@pytest.fixture(params=[LocalEngine(), InngestEngine()], ids=lambda engine: engine.name)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield request.param


def blocked_at(index: int, error: Exception) -> dict[int, list[Exception]]:
    """``FakeVideoModel.failures``: this error on every start of scene ``index``."""
    return {index: [error] * (ATTEMPTS + 1)}


def test_a_chained_job_makes_each_scene_from_the_last_frame_then_stitches(engine: Engine, world: FakeWorld) -> None:
    job_id = world.submit(3)
    job = engine.run(world, job_id)

    assert (job.status, job.progress) == (Status.COMPLETED, 100)
    assert world.model.started_indexes() == [0, 1, 2]
    assert [s.first_frame_key for s in world.model.started] == [None, frame_key(job_id, 0), frame_key(job_id, 1)]
    assert world.stitcher.calls == [(job_id, [segment_key(job_id, i) for i in range(3)], final_key(job_id))]
    assert job.video_uri == f"mem://{final_key(job_id)}"
    assert [(s.status, s.attempts) for s in job.segments] == [(SegmentStatus.COMPLETED, 1)] * 3


def test_unchained_scenes_are_all_made_and_stitched_in_prompt_order(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=1))
    job_id = world.submit(4, chain=False)
    job = engine.run(world, job_id)

    assert job.status is Status.COMPLETED
    assert sorted(world.model.started_indexes()) == [0, 1, 2, 3]
    assert all(s.first_frame_key is None for s in world.model.started) and world.frames.calls == []
    assert world.stitcher.calls[0][1] == [segment_key(job_id, i) for i in range(4)]


def test_a_transient_failure_is_retried_without_redoing_finished_scenes(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures={1: [TransientError("503")] * 2}))
    job = engine.run(world, world.submit(3))

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 1, 1, 1, 2]  # the start call retried, nothing else
    assert [s.attempts for s in job.segments] == [1, 1, 1]  # attempts count generations
    assert len(world.frames.calls) == 2


def test_retries_that_run_out_fail_the_job_with_the_reason_and_the_step(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures=blocked_at(1, TransientError("quota"))))
    job = engine.run(world, world.submit(3))

    assert (job.status, job.error, job.error_step) == (Status.FAILED, "quota", "segment-1-start")
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED, SegmentStatus.FAILED, SegmentStatus.PENDING]
    assert job.segments[1].attempts == 1  # one generation, whose start was tried ATTEMPTS times
    assert world.model.started_indexes() == [0] + [1] * ATTEMPTS
    assert blobs.exists(segment_key(job.job_id, 0))  # what was made is kept
    assert world.stitcher.calls == []


def test_a_permanent_failure_is_not_retried_and_fails_the_job_naming_the_step(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    error = PermanentError("the prompt was blocked")
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures=blocked_at(1, error)))
    job = engine.run(world, world.submit(3))

    assert (job.status, job.error, job.error_step) == (Status.FAILED, "the prompt was blocked", "segment-1-start")
    assert job.segments[1].error == "the prompt was blocked"
    assert world.model.started_indexes() == [0, 1]
    assert world.stitcher.calls == []


def test_a_failed_operation_names_the_scene_and_the_poll_step(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()

    class Filtered(FakeVideoModel):
        def poll(self, operation: str) -> Operation:
            if "segments/1" in operation:
                raise PermanentError("Veo's safety filters blocked the video: violence")
            return super().poll(operation)

    world = make_world(blobs=blobs, model=Filtered(blobs))
    job = engine.run(world, world.submit(3))
    assert (job.status, job.error_step) == (Status.FAILED, "segment-1-poll-0")
    assert job.error == "scene 2: Veo's safety filters blocked the video: violence"


def test_a_stitch_failure_fails_the_job_at_the_stitch_with_its_error(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, stitcher=FakeStitcher(blobs, error=PermanentError("sizes differ")))
    job = engine.run(world, world.submit(2))

    assert (job.status, job.error, job.error_step, job.stitch_error) == (
        Status.FAILED,
        "sizes differ",
        "stitch-start",
        "sizes differ",
    )
    assert all(s.status is SegmentStatus.COMPLETED for s in job.segments)


def test_a_job_cancelled_while_running_starts_no_further_scene_and_stays_cancelled(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs)

    def cancel_during_second(spec: SegmentSpec) -> None:
        if spec.index == 1:
            world.jobs.update(spec.job_id, lambda j: j.move_to(Status.CANCELLED))

    world.model = FakeVideoModel(blobs, on_start=cancel_during_second)
    job = engine.run(world, world.submit(4))

    assert (job.status, job.error) == (Status.CANCELLED, None)
    assert world.model.started_indexes() == [0, 1]
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED] + [SegmentStatus.CANCELLED] * 3
    assert world.stitcher.calls == []


def test_a_job_cancelled_while_its_stitch_starts_stops_that_stitch(engine: Engine, world: FakeWorld) -> None:
    class CancelledMeanwhile(FakeStitcher):
        def start(self, spec: StitchSpec) -> str:
            name = super().start(spec)
            world.jobs.update(spec.job_id, lambda j: j.move_to(Status.CANCELLED))
            return name

    world.stitcher = stitcher = CancelledMeanwhile(world.blobs)
    job = engine.run(world, world.submit(2))

    assert job.status is Status.CANCELLED and job.stitch_job is None
    assert stitcher.cancelled == [f"stitch/{final_key(job.job_id)}"]


def test_a_job_cancelled_before_its_run_starts_nothing(engine: Engine, world: FakeWorld) -> None:
    job_id = world.submit(2)
    world.jobs.update(job_id, lambda j: j.move_to(Status.CANCELLED))
    job = engine.run(world, job_id)
    assert job.status is Status.CANCELLED
    assert world.model.started == [] and world.stitcher.calls == []


def test_a_crash_mid_job_resumes_without_generating_any_scene_twice(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()

    class DiesOnce(FakeVideoModel):
        """The first poll of scene 3 kills the process, after its generation was started."""

        died = False

        def poll(self, operation: str) -> Operation:
            if "segments/2" in operation and not self.died:
                self.died = True
                raise Crash()
            return super().poll(operation)

    world = make_world(blobs=blobs, model=DiesOnce(blobs))
    job = engine.run(world, world.submit(4))
    assert isinstance(world.model, DiesOnce)

    assert world.model.died and job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 1, 2, 3]  # every scene paid for once
    assert [s.attempts for s in job.segments] == [1, 1, 1, 1]
    assert len(world.frames.calls) == 3  # finished frames are not extracted again


def test_a_failed_job_resumed_in_place_makes_only_the_missing_scenes(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    error = PermanentError("the prompt was blocked")
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures={2: [error]}))
    job_id = world.submit(4)
    failed = engine.run(world, job_id)
    assert (failed.status, failed.error_step) == (Status.FAILED, "segment-2-start")
    assert world.model.started_indexes() == [0, 1, 2]

    job = engine.resume(world, job_id)  # the model takes scene 3 this time

    assert (job.status, job.progress) == (Status.COMPLETED, 100)
    assert world.model.started_indexes() == [0, 1, 2, 2, 3]  # scenes 1 and 2 were not paid for again
    assert [s.attempts for s in job.segments] == [1, 1, 2, 1]
    assert [s.first_frame_key for s in world.model.started][3] == frame_key(job_id, 1)  # the chain goes on
    assert [(r.error, r.error_step) for r in job.resumes] == [("the prompt was blocked", "segment-2-start")]
    assert world.stitcher.calls == [(job_id, [segment_key(job_id, i) for i in range(4)], final_key(job_id))]


def test_replaying_a_failed_run_from_the_dashboard_resumes_the_job_in_place(
    make_world: Callable[..., FakeWorld],
) -> None:
    """Inngest's answer for dead letters: Replay on the failed run. The replayed run (a fresh step
    history, the same event) finds its job failed, resumes it in place and makes only what is missing."""
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures={1: [PermanentError("blocked")]}))
    job_id = world.submit(3)

    def fail_then_replay(dev: InngestDevServer, job: Job) -> None:
        dev.send([requested(job)])
        dev.wait_idle(timeout=60)
        assert world.jobs.get(job_id).status is Status.FAILED
        [failed] = [r for r in dev.runs_of("longform-generate_long_form_video") if r.status == "Failed"]
        dev.replay(failed)

    job = InngestEngine().drive(world, job_id, fail_then_replay)

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 1, 1, 2]
    assert [(r.error, r.error_step) for r in job.resumes] == [("blocked", "segment-1-start")]


def test_an_operation_that_ends_with_a_transient_error_gets_a_new_generation_of_its_scene(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    unavailable = GenerationFailed("Veo failed to generate the video (code 14): try again", again=True)
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, ended_with={1: [unavailable]}))
    job = engine.run(world, world.submit(3))

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 1, 1, 2]
    assert [s.attempts for s in job.segments] == [1, 2, 1]


def test_generations_that_keep_failing_fail_the_job_naming_the_scene_after_the_bound(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    unavailable = GenerationFailed("Veo failed to generate the video (code 13): internal", again=True)
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, ended_with={0: [unavailable] * 5}))
    job = engine.run(world, world.submit(2))

    assert job.status is Status.FAILED
    assert world.model.started_indexes() == [0, 0, 0]  # three generations, then no more
    assert job.error == "scene 1: 3 generations failed, the last: Veo failed to generate the video (code 13): internal"
    assert job.segments[0].status is SegmentStatus.FAILED


def test_every_unchained_scene_that_fails_keeps_its_own_reason_and_the_job_names_them_all(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    blocked = GenerationFailed("Veo's safety filters blocked the video: violence", again=False)
    refused = GenerationFailed("Veo failed to generate the video (code 3): bad prompt", again=False)
    # Each start takes a moment, so that locally all four scenes are begun before one fails (no
    # scene starts after a failure).
    model = FakeVideoModel(blobs, polls_until_done=1, ended_with={1: [blocked], 3: [refused]}, seconds=0.05)
    world = make_world(blobs=blobs, model=model)
    job = engine.run(world, world.submit(4, chain=False))

    assert job.status is Status.FAILED
    assert not [s for s in job.segments if s.status is SegmentStatus.GENERATING]  # none left "generating"
    reasons = {s.index: s.error for s in job.segments if s.status is SegmentStatus.FAILED}
    assert reasons[1] == "scene 2: Veo's safety filters blocked the video: violence"
    if engine.name == "local":  # its scenes run at once: both fail, each with its own reason
        assert reasons[3] == "scene 4: Veo failed to generate the video (code 3): bad prompt"
        assert job.error == (
            "2 scenes failed: scene 2: Veo's safety filters blocked the video: violence; "
            "scene 4: Veo failed to generate the video (code 3): bad prompt"
        )
    else:  # the stand-in runs planned steps one by one: the run ends before scene 4's poll
        assert reasons[3] in (STOPPED, "scene 4: Veo failed to generate the video (code 3): bad prompt")
        assert job.error is not None and (job.error.startswith("scene 2: ") or "2 scenes failed" in job.error)


# -- integrity before acceptance --------------------------------------------------------------------


def test_a_scene_whose_file_fails_the_check_is_generated_again_not_stitched(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, broken={1: 1}))
    job = engine.run(world, world.submit(3))

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 1, 1, 2]  # the broken one, then a good one
    assert [s.attempts for s in job.segments] == [1, 2, 1]
    assert not any(blobs.blobs[key].startswith(BROKEN) for key in world.stitcher.calls[0][1])
    checked = [key for key, _, _ in world.checker.checked]
    assert checked.count(segment_key(job.job_id, 1)) == 2 and checked[-1] == final_key(job.job_id)
    [(_, final, decode_video)] = [c for c in world.checker.checked if c[0] == final_key(job.job_id)]
    assert (final.seconds, final.width, final.height, final.audio, decode_video) == (24, 1280, 720, True, False)


def test_a_scene_broken_in_every_generation_fails_the_job_naming_the_scene_and_the_problem(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, broken={0: 9}))
    job = engine.run(world, world.submit(2))

    assert job.status is Status.FAILED
    assert world.model.started_indexes() == [0, 0, 0]
    assert job.error == (
        f"scene 1: 3 generations failed, the last made a broken file: "
        f"{segment_key(job.job_id, 0)}: the video is corrupt at 2.5 s"
    )
    assert world.stitcher.calls == []


def test_a_resumed_job_makes_again_a_scene_whose_earlier_file_is_broken_or_gone(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures={3: [PermanentError("blocked")]}))
    job_id = world.submit(4)
    assert engine.run(world, job_id).status is Status.FAILED
    blobs.put(segment_key(job_id, 1), BROKEN + b"bytes overwritten")  # damaged while the job waited
    blobs.delete(segment_key(job_id, 2))  # removed

    job = engine.resume(world, job_id)

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 1, 2, 3, 1, 2, 3]  # scene 1 kept; 2 and 3 made again
    assert [s.attempts for s in job.segments] == [1, 2, 2, 2]


def test_a_stitched_video_that_fails_the_check_fails_the_job_at_the_stitch(engine: Engine, world: FakeWorld) -> None:
    class CutShort(FakeStitcher):
        def start(self, spec: StitchSpec) -> str:
            name = super().start(spec)
            self.blobs.put(spec.output_key, BROKEN + b"half a video")
            return name

    world.stitcher = CutShort(world.blobs)
    job = engine.run(world, world.submit(2))

    assert (job.status, job.error_step) == (Status.FAILED, "stitch-check")
    assert job.stitch_error == f"{final_key(job.job_id)}: the video is corrupt at 2.5 s"
    assert all(s.status is SegmentStatus.COMPLETED for s in job.segments)  # kept for a resume


# -- what each job spent ----------------------------------------------------------------------------

SCENE = 8 * PRICES.veo[PRICING.model].with_audio  # one generation of an 8 s scene with audio, by the table
STITCH = 24 / 60 * PRICES.transcoder.hd  # three 8 s scenes at 720p, Transcoder minutes


def spent(job: Job) -> tuple[float, float, float]:
    assert job.cost is not None
    return job.cost.scenes_usd, job.cost.stitch_usd, job.cost.total_usd


def test_a_completed_job_records_each_scene_and_the_stitch_at_the_tables_prices(
    engine: Engine, world: FakeWorld
) -> None:
    job = engine.run(world, world.submit(3))

    assert job.status is Status.COMPLETED
    assert spent(job) == pytest.approx((3 * SCENE, STITCH, 3 * SCENE + STITCH))
    assert [(s.billed_generations, s.cost_usd) for s in job.segments] == [(1, pytest.approx(SCENE))] * 3
    assert job.cost is not None and job.cost.estimate_usd == pytest.approx(3 * SCENE + STITCH)


def test_a_video_refused_by_the_check_is_paid_for_and_an_operation_that_failed_is_not(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    unavailable = GenerationFailed("Veo failed to generate the video (code 14): try again", again=True)
    model = FakeVideoModel(blobs, broken={0: 1}, ended_with={2: [unavailable]})
    world = make_world(blobs=blobs, model=model)
    job = engine.run(world, world.submit(3))

    assert job.status is Status.COMPLETED
    assert world.model.started_indexes() == [0, 0, 1, 2, 2]
    assert [s.billed_generations for s in job.segments] == [2, 1, 1]  # the broken video, not the failed op
    assert spent(job) == pytest.approx((4 * SCENE, STITCH, 4 * SCENE + STITCH))


def test_a_failed_job_shows_what_it_spent_scene_by_scene(engine: Engine, make_world: Callable[..., FakeWorld]) -> None:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, broken={1: 9}))
    job = engine.run(world, world.submit(3))

    assert job.status is Status.FAILED
    assert [s.billed_generations for s in job.segments] == [1, 3, 0]  # three broken videos of scene 2, all paid
    assert spent(job) == pytest.approx((4 * SCENE, 0, 4 * SCENE))


def test_quota_refusals_are_retried_and_counted_on_the_scene(
    engine: Engine, make_world: Callable[..., FakeWorld]
) -> None:
    blobs = InMemoryBlobStore()
    quota = QuotaExceeded("could not start scene: 429 RESOURCE_EXHAUSTED Quota exceeded", retry_after=1)
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, failures={1: [quota, quota]}))
    job = engine.run(world, world.submit(3))

    assert job.status is Status.COMPLETED
    assert [s.quota_hits for s in job.segments] == [0, 2, 0] and job.quota_hits == 2
    assert [s.billed_generations for s in job.segments] == [1, 1, 1]  # a refused start is not paid for
