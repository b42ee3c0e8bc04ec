"""What the jobs say, in numbers: latencies, success rates, failures by step, quota hits, cost.

``compute`` reads nothing: it is given the jobs (from SQLite, or Firestore) and returns ``Stats``.
``analytics/*.sql`` computes the same figures in BigQuery from the export of ``videoJobs``; a test
runs both over the same jobs and compares. The definitions, shared by both:

- job latency: ``timings.createdAt`` → ``timings.completedAt`` of completed jobs (seconds);
- scene latency: ``startedAt`` → ``completedAt`` of completed scenes (a retried scene's includes
  its retries);
- stitch latency: ``timings.stitchStartedAt`` → ``timings.completedAt`` of completed jobs;
- percentiles interpolate linearly between the two nearest values (BigQuery's ``PERCENTILE_CONT``);
- scene success: of the scenes attempted (``attempts`` > 0), those completed at their first attempt
  and those completed at all;
- stitch success: of the jobs that began stitching, those completed;
- job failures: of the jobs that ended (completed, failed or cancelled), those failed, and the
  failed ones by step (``errorStep`` with its numbers taken out: ``segment-2-poll-0`` is
  ``segment-poll``);
- quota hits: every scene's and every stitch's;
- cost: ``cost.totalUsd`` (what was spent) per user and in all, and whether any was an estimate.

A job counts when it was created at or after ``since``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic.alias_generators import to_camel

from .job import Job, SegmentStatus, Status, seconds_between
from .prices import usd


@dataclass(frozen=True)
class Latency:
    """Seconds: how many values, and their p50, p95 and max (None when there are none)."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None)
        return cls(len(ordered), _round(percentile(ordered, 0.5)), _round(percentile(ordered, 0.95)), ordered[-1])


@dataclass(frozen=True)
class Rate:
    """``done`` of ``of``, and the ratio (None when ``of`` is 0)."""

    done: int
    of: int

    @property
    def rate(self) -> float | None:
        return round(self.done / self.of, 6) if self.of else None


@dataclass(frozen=True)
class Stats:
    jobs: int
    by_status: dict[str, int]
    job_latency: Latency
    scene_latency: Latency
    stitch_latency: Latency
    scenes_first_attempt: Rate
    scenes_completed: Rate
    stitches_completed: Rate
    jobs_failed: Rate
    failures_by_step: dict[str, int]
    quota_hits: int
    cost_by_user: dict[str, float]
    cost_usd: float
    estimated: bool  # some cost was priced, not billed (local jobs)
    since: str | None = None
    user: str | None = None

    def to_json(self) -> dict[str, Any]:
        """camelCase, as the job documents: ``jobLatency.p95``, ``scenesCompleted.rate``…"""
        data: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if isinstance(getattr(self, name), Rate):
                value["rate"] = getattr(self, name).rate
            data[to_camel(name)] = value
        return data


def compute(jobs: Iterable[Job], since: str | None = None, user: str | None = None) -> Stats:
    """The figures over ``jobs`` created at or after ``since`` (ISO 8601), of ``user`` if given."""
    chosen = [
        j for j in jobs if (since is None or j.timings["createdAt"] >= since) and (user is None or j.user_id == user)
    ]
    completed = [j for j in chosen if j.status is Status.COMPLETED]
    ended = [j for j in chosen if j.status.is_final]
    failed = [j for j in chosen if j.status is Status.FAILED]
    scenes = [s for j in chosen for s in j.segments if s.attempts > 0]
    made = [s for s in scenes if s.status is SegmentStatus.COMPLETED]
    stitched = [j for j in chosen if "stitchStartedAt" in j.timings]
    cost: dict[str, float] = defaultdict(float)
    for job in chosen:
        if job.cost is not None:
            cost[job.user_id] = usd(cost[job.user_id] + job.cost.total_usd)
    return Stats(
        jobs=len(chosen),
        by_status=dict(sorted(Counter(j.status.value for j in chosen).items())),
        job_latency=Latency.of([seconds_between(j.timings["createdAt"], j.timings["completedAt"]) for j in completed]),
        scene_latency=Latency.of(
            [seconds_between(s.started_at, s.completed_at) for s in made if s.started_at and s.completed_at]
        ),
        stitch_latency=Latency.of(
            [
                seconds_between(j.timings["stitchStartedAt"], j.timings["completedAt"])
                for j in completed
                if "stitchStartedAt" in j.timings
            ]
        ),
        scenes_first_attempt=Rate(sum(1 for s in made if s.attempts == 1), len(scenes)),
        scenes_completed=Rate(len(made), len(scenes)),
        stitches_completed=Rate(sum(1 for j in stitched if j.status is Status.COMPLETED), len(stitched)),
        jobs_failed=Rate(len(failed), len(ended)),
        failures_by_step=dict(sorted(Counter(step_kind(j.error_step) for j in failed).items())),
        quota_hits=sum(j.quota_hits for j in chosen),
        cost_by_user=dict(sorted(cost.items())),
        cost_usd=usd(sum(cost.values())),
        estimated=any(j.cost is not None and j.cost.estimated for j in chosen),
        since=since,
        user=user,
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the nearest ranks, as BigQuery's PERCENTILE_CONT."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def step_kind(step: str | None) -> str:
    """A step id without its numbers: ``segment-2-poll-1-0`` → ``segment-poll``; none → ``unknown``."""
    if not step:
        return "unknown"
    return "-".join(part for part in step.split("-") if not re.fullmatch(r"\d+", part))


def _round(value: float) -> float:
    return round(value, 3)
