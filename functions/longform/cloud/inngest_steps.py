"""``Steps`` over Inngest's ``ctx.step``, and the error mapping at that boundary.

Inngest calls the function again for every step and hands back the results of finished steps,
so the workflow replays to where it stopped, as with the local runner. What a step body raises is
mapped here, the way the local runner treats it:

    TransientError with retry_after → inngest.RetryAfterError    retried, not sooner than asked
    TransientError                  → raised again               retried with Inngest's backoff
    JobCancelled                    → a memoized marker          the run ends, not failed
    anything else                   → inngest.NonRetriableError  the run fails now; on_failure runs

The ``inngest/function.failed`` event carries the error's name and message but no step, so every
message that leaves a step starts with ``[step-id]``: ``failure_message`` / ``parse_failure``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar, cast

import inngest

from ..errors import JobCancelled, LongformError, TransientError
from ..job import Status
from ..logs import log_context
from ..ports import JobStore
from ..workflow import fail_job

T = TypeVar("T")
log = logging.getLogger(__name__)

# A step whose job was cancelled returns {_CANCELLED: jobId}: memoized like any result, so every
# replay ends the run at the same point, and nothing is retried or reported as a failure.
_CANCELLED = "longform/jobCancelled"
_FAILURE = re.compile(r"\[(?P<step>[^\]\s]+)\] (?P<reason>.*)", re.DOTALL)


class InngestSteps:
    """``Steps`` for one run of an Inngest function."""

    def __init__(self, ctx: inngest.ContextSync) -> None:
        self._ctx = ctx

    def run(self, step_id: str, fn: Callable[[], T]) -> T:
        result = self._ctx.step.run(step_id, partial(self._body, step_id, fn))
        if isinstance(result, dict) and _CANCELLED in result:
            raise JobCancelled(str(result[_CANCELLED]))
        return cast(T, result)

    def sleep(self, step_id: str, seconds: float) -> None:
        self._ctx.step.sleep(step_id, timedelta(seconds=seconds))

    def parallel(self, branches: Sequence[Callable[[], T]]) -> list[T]:
        # Each branch's next new step is planned; Inngest runs the planned steps at the same time,
        # memoizes them, and calls again until every branch is done (ParallelMode.WAIT).
        return list(self._ctx.group.parallel(tuple(branches)))

    def _body(self, step_id: str, fn: Callable[[], T]) -> T | dict[str, str]:
        with log_context(step=step_id, attempt=self._ctx.attempt):
            try:
                return fn()
            except JobCancelled as exc:
                log.info("the job was cancelled: the run stops here")
                return {_CANCELLED: exc.job_id}
            except TransientError as exc:
                message = failure_message(step_id, str(exc))
                if exc.retry_after is not None:
                    log.warning("step failed, retrying in %.0fs or more: %s", exc.retry_after, exc)
                    raise inngest.RetryAfterError(message, timedelta(seconds=exc.retry_after)) from exc
                log.warning("step failed, retrying: %s", exc)
                raise TransientError(message) from exc
            except Exception as exc:
                # A LongformError is an expected failure; anything else is a bug: keep its trace.
                log.error("step failed for good: %s", exc, exc_info=not isinstance(exc, LongformError))
                raise inngest.NonRetriableError(failure_message(step_id, str(exc) or type(exc).__name__)) from exc


def run_workflow(job_id: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a function's body and decide how the run ends from what escapes its steps."""
    try:
        return body()
    except JobCancelled:
        log.info("job %s was cancelled: the run ends", job_id)
        return {"jobId": job_id, "status": Status.CANCELLED.value}
    except (inngest.NonRetriableError, inngest.RetryAfterError, inngest.StepError, TransientError):
        raise  # mapped in a step already, or a step that gave up (StepError: its retries are spent)
    except Exception as exc:
        # Outside any step (a poll limit reached, a bug): a replay would only repeat it.
        raise inngest.NonRetriableError(str(exc) or type(exc).__name__) from exc


def marks_job_failed(
    jobs: Callable[[], JobStore], default_step: str | None = None
) -> Callable[[inngest.ContextSync], None]:
    """The ``on_failure`` handler of a function: ``inngest/function.failed`` for one of its runs
    marks the run's job failed with the reason and the failing step (``default_step`` when the
    failure came from outside any step, a poll limit say)."""

    def on_failure(ctx: inngest.ContextSync) -> None:
        failure = Failure.from_event(ctx.event)
        step_id = failure.step_id or default_step
        with log_context(jobId=failure.job_id, step=step_id):
            fail_job(jobs(), failure.job_id, failure.reason, step_id)

    return on_failure


def failure_message(step_id: str, reason: str) -> str:
    return f"[{step_id}] {reason}"


def parse_failure(message: str) -> tuple[str | None, str]:
    """The step id and the reason in a message made by ``failure_message`` (else no step)."""
    match = _FAILURE.fullmatch(message)
    return (match["step"], match["reason"]) if match else (None, message)


@dataclass(frozen=True)
class Failure:
    """What an ``inngest/function.failed`` event says about a run of ours."""

    job_id: str
    step_id: str | None
    reason: str

    @classmethod
    def from_event(cls, event: inngest.Event) -> Failure:
        # data: {"error": {"name", "message", "stack"}, "event": <the run's event>, "function_id", "run_id"}
        original = _mapping(event.data.get("event"))
        job_id = _mapping(original.get("data")).get("jobId")
        if not isinstance(job_id, str) or not job_id:
            raise inngest.NonRetriableError(f"a failure event without a jobId: {dict(event.data)}")
        error = _mapping(event.data.get("error"))
        message = error.get("message") or error.get("name") or "the run failed"
        step_id, reason = parse_failure(str(message))
        return cls(job_id, step_id, reason)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}
