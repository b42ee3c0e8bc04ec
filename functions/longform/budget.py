"""The daily budget of video seconds: what a job reserves when it is made, what it gives back
when it fails or is cancelled, and the limits it is checked against; and the day's usage kept
beside it in the same ledger entries (what was generated and spent, how jobs ended, quota hits).

A job reserves ``segmentSeconds × prompts`` on the UTC day it is made, in the same transaction
that creates it, against the user's limit and the project's. A job that ends failed or cancelled
returns the seconds of the scenes it did not make (``Job.move_to`` records them); the store
applies the return to the ledger in the same write as the status. So the ledger is, per user (and
for the project) and day: seconds reserved by jobs, less what they returned.

Every write to a job books what it changed (``ledger_change``) on the job's day — the day it was
made, the day its seconds were reserved: video seconds generated (every billed generation), dollars
spent, jobs that completed, failed or were cancelled, quota hits — in the same write as the job, so
nothing is counted twice or lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from .errors import BudgetExhausted

if TYPE_CHECKING:
    from .job import Job

PROJECT = "project"  # the ledger of everybody's jobs together


def utc_day(now: datetime | None = None) -> str:
    """The day a reservation counts against: ``YYYY-MM-DD`` in UTC."""
    return (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()


@dataclass(frozen=True)
class SpendLimits:
    """Video seconds a day: for the user making the job, and for the whole project (None: no limit)."""

    user_seconds: int
    project_seconds: int | None = None


class Usage(BaseModel):
    """One ledger entry: a user's (or the project's) day."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)

    day: str
    seconds: int = 0  # reserved, less what was returned
    returned_seconds: int = 0
    jobs: int = 0  # made that day
    limit_seconds: int | None = None  # the user's daily limit when their last job was made (for the page)
    # What the day's jobs did:
    generated_seconds: int = 0  # video the model made, every billed generation counted
    spent_usd: float = 0.0
    completed: int = 0
    failed: int = 0  # each failure (a resumed job that fails again counts again)
    cancelled: int = 0
    quota_hits: int = 0  # 429s / RESOURCE_EXHAUSTED from Veo or the Transcoder

    @field_validator("spent_usd")
    @classmethod
    def _to_a_millionth(cls, value: float) -> float:
        return round(value, 6)  # increments of floats add float dust

    def left(self, limit: int) -> int:
        return max(0, limit - self.seconds)


def admit(limits: SpendLimits, asked: int, user: Usage, project: Usage) -> None:
    """Raise BudgetExhausted unless ``asked`` seconds fit both the user's and the project's day."""
    if user.seconds + asked > limits.user_seconds:
        raise BudgetExhausted("user", limits.user_seconds, user.seconds, asked)
    if limits.project_seconds is not None and project.seconds + asked > limits.project_seconds:
        raise BudgetExhausted("project", limits.project_seconds, project.seconds, asked)


def admit_taken_back(limits: SpendLimits | None, before: Job, after: Job, user: Usage, project: Usage) -> None:
    """When a change takes seconds from the budget (a resume takes back what it returned, an
    edit reserves the seconds of its new version), they must fit ``limits``."""
    taken = reserved_by(before, after)
    if limits is not None and taken > 0:
        admit(limits, taken, user, project)


def reserved_by(before: Job, after: Job) -> int:
    """Seconds a write takes from the day's budget (negative: gives back)."""
    if after.budget is None:
        return 0
    if after.version != before.version:
        return after.budget.seconds  # an edit: the new version's own reservation, on its own day
    return -returned_by(before, after)


def ledger_change(before: Job, after: Job) -> dict[str, int | float]:
    """What the change from ``before`` to ``after`` adds to the job's day, by Usage field (only
    what is not zero): seconds given back, video generated, dollars spent, how it ended, quota hits.
    An edit's write books only the new version's reservation: what it makes and spends is booked
    as it runs, from nothing (what the earlier version spent stays on its own day)."""
    if after.budget is None:
        return {}
    if after.version != before.version:
        return {"seconds": after.budget.seconds} if after.budget.seconds else {}
    returned = returned_by(before, after)
    seconds = after.video_request.segment_seconds
    change: dict[str, int | float] = {
        "seconds": -returned,
        "returned_seconds": returned,
        "generated_seconds": (_billed(after) - _billed(before)) * seconds,
        "spent_usd": round(_spent(after) - _spent(before), 6),
        "quota_hits": after.quota_hits - before.quota_hits,
    }
    if after.status != before.status and after.status.value in ("completed", "failed", "cancelled"):
        change[after.status.value] = 1
    return {name: value for name, value in change.items() if value}


def _billed(job: Job) -> int:
    return sum(s.billed_generations for s in job.segments)


def _spent(job: Job) -> float:
    return job.cost.total_usd if job.cost else 0.0


def returned_by(before: Job, after: Job) -> int:
    """Seconds a write gives back to the job's day (what ``after`` returned beyond ``before``)."""
    if after.budget is None:
        return 0
    return after.budget.returned_seconds - (before.budget.returned_seconds if before.budget else 0)
