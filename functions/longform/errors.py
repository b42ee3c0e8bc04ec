"""The exceptions Longform raises, by what the caller should do about them.

    LongformError
    ├── InvalidRequest     the request breaks a rule; nothing was written
    ├── InvalidSetting     a setting (environment variable, Firebase param) breaks a rule
    ├── Unauthenticated    no signed-in caller
    ├── PermissionDenied   the caller may not do this (someone else's job)
    ├── JobNotFound        no job with that id
    ├── TooManyActiveJobs  the user already has the most unfinished jobs allowed
    ├── BudgetExhausted    the job needs more video seconds than are left today (user or project)
    ├── NotResumable       only a failed job can be resumed (this one runs, or completed, or was cancelled)
    ├── JobBusy            another live process runs this job (it holds the job's lease)
    ├── IllegalTransition  a status or progress change the job rules forbid (a bug, never retried)
    ├── TransientError     an adapter failed in a way that may pass: retry with backoff
    │   ├── QuotaExceeded  the service refused for quota (429): counted on the job and the ledger
    │   └── JobNotQueued   the job was stored but could not be started; it is marked failed
    ├── PermanentError     an adapter failed in a way that will not pass: fail the job
    │   ├── GenerationFailed  a finished model operation made no video; ``again`` if a new one may
    │   └── BrokenMedia    a file is not the video it must be (truncated, corrupt, wrong size or rate)
    ├── StepFailed         a workflow step gave up (permanent error, or retries exhausted)
    └── JobCancelled       the job was cancelled; stop without marking it failed

Adapters map vendor errors to TransientError / PermanentError at their boundary,
chained with ``from exc``, so the engines never see a vendor exception. Each transport maps
these to its own codes in one place: ``callable_protocol`` (the callables, the local server) and
the CLI's exit codes.
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


class InvalidSetting(LongformError):
    """A setting breaks a rule. ``setting`` is its environment name, e.g. ``POLL_SECONDS``."""

    def __init__(self, setting: str, rule: str, value: object = None) -> None:
        got = f", got {value!r}" if value is not None else ""
        super().__init__(f"{setting}: {rule}{got}")
        self.setting = setting
        self.rule = rule


class Unauthenticated(LongformError):
    """The call carries no signed-in user."""


class PermissionDenied(LongformError):
    """The caller is signed in but may not do this."""


class JobNotFound(LongformError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class TooManyActiveJobs(LongformError):
    def __init__(self, user_id: str, limit: int) -> None:
        super().__init__(f"at most {limit} unfinished job(s) per user; wait for one to end")
        self.user_id = user_id
        self.limit = limit


class BudgetExhausted(LongformError):
    """The job needs more video seconds than today's budget has left. ``scope`` is ``user`` or
    ``project``."""

    def __init__(self, scope: str, limit: int, used: int, asked: int) -> None:
        self.scope, self.limit, self.asked = scope, limit, asked
        self.remaining = max(0, limit - used)
        whose = "you have" if scope == "user" else "the service has"
        super().__init__(
            f"not enough video time left today: this job needs {asked} s and {whose} {self.remaining} s "
            f"of {limit} s a day left"
        )


class NotResumable(LongformError):
    def __init__(self, job_id: str, status: str) -> None:
        why = "it is still running" if status not in ("completed", "cancelled") else f"it is {status}"
        super().__init__(f"job {job_id} cannot be resumed: {why}; only a failed job can")
        self.job_id, self.status = job_id, status


class NotEditable(LongformError):
    def __init__(self, job_id: str, why: str) -> None:
        super().__init__(f"job {job_id} cannot be edited: {why}")
        self.job_id, self.why = job_id, why


class JobBusy(LongformError):
    def __init__(self, job_id: str, holder: str) -> None:
        super().__init__(f"job {job_id} is being run by another process ({holder}); it was not started again")
        self.job_id, self.holder = job_id, holder


class IllegalTransition(LongformError):
    """A change the job rules forbid: a final status left, progress going down, 100 before completed."""


class TransientError(LongformError):
    """A failure that may pass on a later attempt (timeouts, 429, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(TransientError):
    """The service refused the call for quota (HTTP 429, RESOURCE_EXHAUSTED): it passes, and each
    one is counted on the job and in the day's ledger."""


class JobNotQueued(TransientError):
    """The job was stored but its run could not be started (the event was not sent); the job is
    marked failed so nothing waits on it. Trying again makes a new job."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"the job could not be queued; try again ({reason})")
        self.job_id = job_id


class PermanentError(LongformError):
    """A failure that will not pass by retrying (bad input, blocked content, broken media)."""


class GenerationFailed(PermanentError):
    """A model operation finished without a video. Polling it again cannot help (it answers the
    same forever), but when ``again`` (the service was unavailable, out of quota, had an internal
    error) a new generation of the scene may succeed; otherwise (invalid input, a safety filter)
    it will not."""

    def __init__(self, message: str, again: bool) -> None:
        super().__init__(message)
        self.again = again


class BrokenMedia(PermanentError):
    """A segment or video fails the integrity check; the message names the file and the problem."""


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
