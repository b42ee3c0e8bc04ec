"""The callables as Firebase serves them: who is calling, then the use case, then its errors as
``HttpsError``s with the code a Firebase client expects (the mapping is ``callable_errors``, the
same as the local server's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firebase_functions import https_fn
from firebase_functions.https_fn import FunctionsErrorCode, HttpsError

from ..callable_errors import callable_error
from ..service import Caller
from .composition import Cloud


def trigger_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Validate, store the job as queued, send ``video/long_form.requested`` (event id = jobId)."""
    return _answer(lambda: cloud.service.trigger(caller(req), req.data))


def cancel_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Mark the owner's job cancelled (no further segment starts) and tell Inngest to stop the run."""
    return _answer(lambda: cloud.service.cancel(caller(req), req.data))


def caller(req: https_fn.CallableRequest[Any]) -> Caller | None:
    # firebase_functions lets a call without a token through with auth None: the service refuses it.
    if req.auth is None or not req.auth.uid:
        return None
    return Caller(str(req.auth.uid))


def _answer(use_case: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return use_case()
    except Exception as exc:
        error = callable_error(exc)
        raise HttpsError(FunctionsErrorCode[error.status], error.message, error.details) from None
