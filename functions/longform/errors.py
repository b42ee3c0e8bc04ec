"""The exceptions Longform raises, by what the caller should do about them.

    LongformError
    ├── InvalidRequest     the request breaks a rule; nothing was written (exit code 2, INVALID_ARGUMENT)
    ├── JobNotFound        no job with that id
    ├── TooManyActiveJobs  the user already has the most unfinished jobs allowed (RESOURCE_EXHAUSTED)
    ├── IllegalTransition  a status or progress change the job rules forbid (a bug, never retried)
    ├── TransientError     an adapter failed in a way that may pass: retry with backoff
    ├── PermanentError     an adapter failed in a way that will not pass: fail the job
    ├── StepFailed         a workflow step gave up (permanent error, or retries exhausted)
    └── JobCancelled       the job was cancelled; stop without marking it failed

Adapters map vendor errors to TransientError / PermanentError at their boundary,
chained with ``from exc``, so the engines never see a vendor exception.
"""

from __future__ import annotations


class LongformError(Exception):
    """Base of every error Longform raises on purpose."""


class InvalidRequest(LongformError):
    """A request field breaks a rule. ``field`` is a dotted path such as ``prompts[3]``."""

    def __init__(self, field: str, rule: str, problems: list[tuple[str, str]] | None = None) -> None:
        self.problems = problems or [(field, rule)]
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.problems))
        self.field = field
        self.rule = rule

    @classmethod
    def from_problems(cls, problems: list[tuple[str, str]]) -> InvalidRequest:
        field, rule = problems[0]
        return cls(field, rule, problems)


class JobNotFound(LongformError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class TooManyActiveJobs(LongformError):
    def __init__(self, user_id: str, limit: int) -> None:
        super().__init__(f"at most {limit} unfinished job(s) per user; wait for one to end")
        self.user_id = user_id
        self.limit = limit


class IllegalTransition(LongformError):
    """A change the job rules forbid: a final status left, progress going down, 100 before completed."""


class TransientError(LongformError):
    """A failure that may pass on a later attempt (timeouts, 429, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(LongformError):
    """A failure that will not pass by retrying (bad input, blocked content, broken media)."""


class StepFailed(LongformError):
    """A durable step gave up; ``step_id`` names it and ``__cause__`` holds the last error."""

    def __init__(self, step_id: str, reason: str, attempts: int) -> None:
        super().__init__(f"step {step_id} failed after {attempts} attempt(s): {reason}")
        self.step_id = step_id
        self.reason = reason
        self.attempts = attempts


class JobCancelled(LongformError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id
