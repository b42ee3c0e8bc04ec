"""The daily budget of video seconds: what a job reserves when it is made, what it gives back
when it fails or is cancelled, and the limits it is checked against.

A job reserves ``segmentSeconds × prompts`` on the UTC day it is made, in the same transaction
that creates it, against the user's limit and the project's. A job that ends failed or cancelled
returns the seconds of the scenes it did not make (``Job.move_to`` records them); the store
applies the return to the ledger in the same write as the status. So the ledger is, per user (and
for the project) and day: seconds reserved by jobs, less what they returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict
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

    def left(self, limit: int) -> int:
        return max(0, limit - self.seconds)


def admit(limits: SpendLimits, asked: int, user: Usage, project: Usage) -> None:
    """Raise BudgetExhausted unless ``asked`` seconds fit both the user's and the project's day."""
    if user.seconds + asked > limits.user_seconds:
        raise BudgetExhausted("user", limits.user_seconds, user.seconds, asked)
    if limits.project_seconds is not None and project.seconds + asked > limits.project_seconds:
        raise BudgetExhausted("project", limits.project_seconds, project.seconds, asked)


def admit_taken_back(limits: SpendLimits | None, before: Job, after: Job, user: Usage, project: Usage) -> None:
    """When a change takes seconds back into the budget (a resume), they must fit ``limits``."""
    taken = -returned_by(before, after)
    if limits is not None and taken > 0:
        admit(limits, taken, user, project)


def returned_by(before: Job, after: Job) -> int:
    """Seconds a write gives back to the job's day (what ``after`` returned beyond ``before``)."""
    if after.budget is None:
        return 0
    return after.budget.returned_seconds - (before.budget.returned_seconds if before.budget else 0)
