"""Longform's errors as the callable protocol carries them to ``httpsCallable``: one mapping for
the deployed callables (raised as ``HttpsError``) and the local server (written as JSON), so both
answer the same request with the same status, message and details.

    InvalidRequest     INVALID_ARGUMENT    400  details: field, rule, problems
    Unauthenticated    UNAUTHENTICATED     401
    PermissionDenied   PERMISSION_DENIED   403
    JobNotFound        NOT_FOUND           404
    TooManyActiveJobs  RESOURCE_EXHAUSTED  429  details: limit
    InvalidSetting     FAILED_PRECONDITION 400  the deployment is misconfigured
    JobNotQueued       UNAVAILABLE         503  details: jobId
    TransientError     UNAVAILABLE         503  try again
    anything else      INTERNAL            500  (logged with its trace; the client learns nothing more)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .errors import (
    InvalidRequest,
    InvalidSetting,
    JobNotFound,
    JobNotQueued,
    PermissionDenied,
    TooManyActiveJobs,
    TransientError,
    Unauthenticated,
)

log = logging.getLogger(__name__)

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
