"""Polling: how late a finished Veo operation is noticed, and how many Inngest steps a job's run
takes, for a 50-scene chained job whose generations take 40–180 s (uniform, seeded).

    functions/venv/bin/python bench/polling_bench.py      (bench/run.py prints these rows with the rest)

It drives the real workflow (``generate_segments``, with the deployment's default poll settings)
on a simulated clock: a model stand-in that finishes each scene a drawn number of seconds after
its start and, like Veo, says it never finishes in under 30 s; the fakes of tests/fakes.py behind
the other ports; and ``CountingSteps``, which counts what Inngest counts as a step (every
``steps.run`` and ``steps.sleep``, and the ``request-stitch`` event the function sends as a step).
The waste of a scene is the time from its operation being done to the poll that saw it.

Today's schedule (before this bench: each poll a step, a durable sleep between polls, 10 s first,
×1.5, at most 60 s; and the steps begin, start, check, done and last-frame of each scene) is
computed from its formula on the same draws.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from bench.media_bench import Row  # noqa: E402
from longform.adapters.veo_video_model import EARLIEST_DONE_SECONDS  # noqa: E402
from longform.config import Settings  # noqa: E402
from longform.job import Job, Status  # noqa: E402
from longform.ports import Operation, SegmentSpec  # noqa: E402
from longform.prices import PRICES, Pricing  # noqa: E402
from longform.request import validate_request  # noqa: E402
from longform.workflow import Pipeline, generate_segments  # noqa: E402
from tests.fakes import (  # noqa: E402
    FakeFrameExtractor,
    FakeMediaChecker,
    FakeStitcher,
    InMemoryBlobStore,
    InMemoryJobStore,
    SimClock,
)

T = TypeVar("T")
SCENES = 50
FASTEST, SLOWEST = 40.0, 180.0  # Veo's time for a clip, uniform
SEED = 20261129
WASTE_TARGET = 3.0  # seconds a scene, on average
STEPS_TARGET = 200  # steps a run, at SLOWEST a scene
INNGEST_STEP_LIMIT = 1000
AFTER_SEGMENTS = 1  # generate_long_form_video sends request-stitch as a step of its own


class TimedModel:
    """Finishes each scene ``latency(index)`` seconds after its start; never sooner than Veo."""

    earliest_done_seconds = EARLIEST_DONE_SECONDS

    def __init__(self, blobs: InMemoryBlobStore, clock: SimClock, latency: Callable[[int], float]) -> None:
        self.blobs, self.clock, self.latency = blobs, clock, latency
        self.done_at: dict[str, float] = {}
        self.seen_at: dict[str, float] = {}
        self.polls = 0

    def start(self, spec: SegmentSpec) -> str:
        name = f"op/{spec.output_key}"
        self.done_at[name] = self.clock() + self.latency(spec.index)
        self.blobs.put(spec.output_key, f"video:{spec.prompt}".encode())
        return name

    def poll(self, operation: str) -> Operation:
        self.polls += 1
        now = self.clock()
        if now < self.done_at[operation]:
            return Operation(operation, done=False)
        self.seen_at.setdefault(operation, now)
        return Operation(operation, done=True, key=operation.removeprefix("op/"))

    def wasted(self) -> list[float]:
        return [self.seen_at[name] - done for name, done in self.done_at.items()]


class CountingSteps:
    """``Steps`` that run each step once, in order, counting them as Inngest does."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.count = 0

    def run(self, step_id: str, fn: Callable[[], T]) -> T:
        self.count += 1
        return fn()

    def sleep(self, step_id: str, seconds: float) -> None:
        self.count += 1
        self.clock.sleep(seconds)

    def parallel(self, branches: Sequence[Callable[[], T]]) -> list[T]:
        return [branch() for branch in branches]


def run_job(latency: Callable[[int], float]) -> tuple[TimedModel, int]:
    """A 50-scene chained job through the real workflow: the model, and the steps of its run."""
    settings = Settings()  # the deployment's defaults: POLL_SECONDS, POLL_BUDGET_SECONDS, the model's floor
    clock, blobs, jobs = SimClock(0.0), InMemoryBlobStore(), InMemoryJobStore()
    model = TimedModel(blobs, clock, latency)
    pipeline = Pipeline(
        jobs,
        blobs,
        model,
        FakeFrameExtractor(blobs),
        FakeStitcher(blobs),
        FakeMediaChecker(blobs),
        Pricing(PRICES, settings.veo_model, "transcoder", estimated=False),
        poll_seconds=settings.poll_seconds,
        poll_budget_seconds=settings.poll_budget_seconds,
        poll_floor_seconds=settings.poll_floor_seconds,
        max_wait_seconds=settings.max_wait_seconds,
        clock=clock,
        sleep=clock.sleep,
    )
    job = Job.new(validate_request({"prompts": [f"scene {i}" for i in range(SCENES)]}), "bench")
    jobs.create(job)
    steps = CountingSteps(clock)
    generate_segments(pipeline, steps, job.job_id)
    made = jobs.get(job.job_id)
    assert all(s.status.value == "completed" for s in made.segments) and made.status is Status.GENERATING
    return model, steps.count + AFTER_SEGMENTS


# -- today's schedule, from its formula ----------------------------------------------------------------


def old_poll_times() -> Iterator[float]:
    """When today's schedule polls, from the start: 0, 10, 25, 47.5, 81.25, 131.9, 191.9 …"""
    at, n = 0.0, 0
    while True:
        yield at
        at += min(10.0 * 1.5**n, 60.0)
        n += 1


def old_scene(latency: float) -> tuple[float, int]:
    """Today's waste for one scene, and its polls."""
    for polls, at in enumerate(old_poll_times(), start=1):
        if at >= latency:
            return at - latency, polls
    raise AssertionError("unreachable")


def old_run_steps(latencies: Sequence[float]) -> int:
    """Today's steps of a run: start; for each scene begin, start, its polls and the sleeps between
    them, check, done, and last-frame but for the last scene; request-stitch."""
    scenes = sum(2 + polls + (polls - 1) + 2 for _, polls in map(old_scene, latencies))
    return 1 + scenes + (len(latencies) - 1) + AFTER_SEGMENTS


def old_expected_waste(points: int = 14_001) -> float:
    """Today's mean waste over every generation time in the range (not just the draws)."""
    span = SLOWEST - FASTEST
    return statistics.fmean(old_scene(FASTEST + span * k / (points - 1))[0] for k in range(points))


def bench_polling() -> list[Row]:
    rng = random.Random(SEED)
    drawn = [rng.uniform(FASTEST, SLOWEST) for _ in range(SCENES)]
    model, steps_drawn = run_job(lambda i: drawn[i])
    waste = model.wasted()
    mean, worst = statistics.fmean(waste), max(waste)
    old = [old_scene(t) for t in drawn]
    old_waste = [w for w, _ in old]
    saved = (sum(old_waste) - sum(waste)) / 60
    slow_model, steps = run_job(lambda i: SLOWEST)
    old_steps = old_run_steps([SLOWEST] * SCENES)
    return [
        Row(
            f"Veo polling: mean waste per scene, {SCENES} chained scenes of {FASTEST:.0f}–{SLOWEST:.0f} s "
            "(seeded draws, simulated clock)",
            f"{mean:.2f} s",
            f"worst {worst:.1f} s, {model.polls / SCENES:.1f} polls a scene; today's schedule (10 s ×1.5 to 60 s) "
            f"on the same draws: {statistics.fmean(old_waste):.1f} s ({old_expected_waste():.1f} s expected), "
            f"worst {max(old_waste):.1f} s, {statistics.fmean(p for _, p in old):.1f} polls a scene; "
            f"the job waits {saved:.1f} min less",
            f"≤ {WASTE_TARGET:.0f} s: {'met' if mean <= WASTE_TARGET else 'not met'}",
        ),
        Row(
            f"Inngest steps per run, {SCENES} chained scenes × {SLOWEST:.0f} s",
            f"{steps}",
            f"today's schedule: {old_steps} (Inngest allows {INNGEST_STEP_LIMIT:,}); {steps_drawn} for the "
            f"{FASTEST:.0f}–{SLOWEST:.0f} s draws; {slow_model.polls / SCENES:.0f} polls a scene",
            f"≤ {STEPS_TARGET}: {'met' if steps <= STEPS_TARGET else 'not met'}",
        ),
    ]


def main() -> None:
    for row in bench_polling():
        print(" | ".join(row))


if __name__ == "__main__":
    main()
