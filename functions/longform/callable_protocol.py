"""The callable protocol (what ``httpsCallable`` speaks), for the deployed callables and the local
server alike, so both answer the same request with the same status, message and details.

In: a POST of ``application/json``, ``{"data": …}`` and nothing else. ``read_body`` checks the raw
bytes before anything parses them — firebase_functions answers 500 to an empty, truncated or
non-UTF-8 body, a bare number, deep nesting or a 5,000-digit number — and refuses each with
INVALID_ARGUMENT naming ``body``.

Out: ``{"result": …}``, or ``{"error": {"status", "message", "details"?}}`` with Firebase's HTTP
status. Longform's errors map to it here, once:

    InvalidRequest     INVALID_ARGUMENT    400  details: field, rule, problems
    Unauthenticated    UNAUTHENTICATED     401
    PermissionDenied   PERMISSION_DENIED   403
    JobNotFound        NOT_FOUND           404
    TooManyActiveJobs  RESOURCE_EXHAUSTED  429  details: limit
    BudgetExhausted    RESOURCE_EXHAUSTED  429  details: scope, limitSeconds, remainingSeconds, requestedSeconds
    NotResumable       FAILED_PRECONDITION 400  details: status
    JobBusy            FAILED_PRECONDITION 400  another process runs the job
    NotEditable        FAILED_PRECONDITION 400  the job still runs, or changed meanwhile
    InvalidSetting     FAILED_PRECONDITION 400  the deployment is misconfigured
    JobNotQueued       UNAVAILABLE         503  details: jobId
    TransientError     UNAVAILABLE         503  try again
    anything else      INTERNAL            500  (logged with its trace; the client learns nothing more)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from .errors import (
    BudgetExhausted,
    InvalidRequest,
    InvalidSetting,
    JobBusy,
    JobNotFound,
    JobNotQueued,
    NotEditable,
    NotResumable,
    PermissionDenied,
    TooManyActiveJobs,
    TransientError,
    Unauthenticated,
)

log = logging.getLogger(__name__)
MAX_DEPTH = 32  # arrays and objects within each other: a request nests 3 deep
MAX_BODY_BYTES = 1 << 20  # 50 prompts of 2,000 characters are about 100 KB
BODY_RULE = 'must be a JSON object {"data": …}'

# Firebase's callable error statuses and the HTTP codes it sends with them (firebase_functions.https_fn).
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}


@dataclass(frozen=True)
class CallableError:
    """An error as a callable returns it: ``{"error": {"status", "message", "details"?}}``."""

    status: str
    message: str
    details: dict[str, Any] | None = None

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.status]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def callable_error(exc: BaseException) -> CallableError:
    """What the client is told about ``exc``."""
    if isinstance(exc, InvalidRequest):
        problems = [{"field": field, "rule": rule} for field, rule in exc.problems]
        return CallableError("INVALID_ARGUMENT", str(exc), {"field": exc.field, "rule": exc.rule, "problems": problems})
    if isinstance(exc, Unauthenticated):
        return CallableError("UNAUTHENTICATED", str(exc))
    if isinstance(exc, PermissionDenied):
        return CallableError("PERMISSION_DENIED", str(exc))
    if isinstance(exc, JobNotFound):
        return CallableError("NOT_FOUND", f"no job {exc.job_id}")
    if isinstance(exc, TooManyActiveJobs):
        return CallableError("RESOURCE_EXHAUSTED", str(exc), {"limit": exc.limit})
    if isinstance(exc, BudgetExhausted):
        details = {
            "scope": exc.scope,
            "limitSeconds": exc.limit,
            "remainingSeconds": exc.remaining,
            "requestedSeconds": exc.asked,
        }
        return CallableError("RESOURCE_EXHAUSTED", str(exc), details)
    if isinstance(exc, JobBusy | NotEditable):
        return CallableError("FAILED_PRECONDITION", str(exc))
    if isinstance(exc, NotResumable):
        return CallableError("FAILED_PRECONDITION", str(exc), {"status": exc.status})
    if isinstance(exc, InvalidSetting):
        log.error("misconfigured: %s", exc)
        return CallableError("FAILED_PRECONDITION", f"the service is misconfigured: {exc}")
    if isinstance(exc, JobNotQueued):
        return CallableError("UNAVAILABLE", "the job could not be queued; try again", {"jobId": exc.job_id})
    if isinstance(exc, TransientError):
        log.warning("unavailable: %s", exc)
        return CallableError("UNAVAILABLE", "the service is busy or unavailable; try again")
    log.error("callable failed", exc_info=exc)
    return CallableError("INTERNAL", "INTERNAL")


def read_body(raw: bytes) -> Any:
    """The ``data`` of a call's body, or InvalidRequest naming ``body`` and what is wrong with it."""
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest("body", f"must be at most {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("body", f"{BODY_RULE} in UTF-8") from None
    if _deeper_than(text, MAX_DEPTH):
        raise InvalidRequest("body", f"must not nest arrays and objects more than {MAX_DEPTH} deep")
    try:
        body = json.loads(text)
    except ValueError as exc:  # not JSON, or a number too long to read (over 4,300 digits)
        too_long = "digits" in str(exc)
        raise InvalidRequest("body", "numbers must have at most 4300 digits" if too_long else BODY_RULE) from None
    if not isinstance(body, dict) or set(body) != {"data"}:
        raise InvalidRequest("body", BODY_RULE)
    return body["data"]


def _deeper_than(text: str, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit`` outside strings: checked before parsing, as
    Python's parser recurses (and fails) on deep input."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
