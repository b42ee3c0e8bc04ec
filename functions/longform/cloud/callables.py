"""The callables as Firebase serves them: the body checked, who is calling, then the use case,
then its errors as ``HttpsError``s with the code a Firebase client expects (``callable_protocol``
maps them, as for the local server).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from firebase_functions import https_fn
from firebase_functions.https_fn import FunctionsErrorCode, HttpsError
from flask import Request, Response

from ..callable_protocol import CallableError, callable_error, read_body
from ..errors import InvalidRequest

if TYPE_CHECKING:  # the service is imported by the first call (Cloud.service), not by main.py
    from ..service import Caller
    from .composition import Cloud

BUDGET_CLAIM = "videoSecondsPerDay"  # a custom claim: the user's own daily budget (an app's paid plan)
Handler = TypeVar("Handler", bound=Callable[[https_fn.CallableRequest[Any]], Any])


def on_call(**options: Any) -> Callable[[Handler], Callable[[Request], Response]]:
    """``https_fn.on_call`` behind a check of the raw body: a malformed one (empty, truncated,
    not UTF-8, not ``{"data": …}``, too deep, a number too long) is refused with 400
    INVALID_ARGUMENT before firebase_functions parses it, which would answer 500. The wrapper
    keeps the endpoint's discovery attributes (``functools.wraps`` copies them)."""

    def decorate(handler: Handler) -> Callable[[Request], Response]:
        # The library types the result as the handler; it is the Flask view that serves it.
        endpoint = cast(Callable[[Request], Response], https_fn.on_call(**options)(handler))

        @functools.wraps(endpoint)
        def checked(request: Request) -> Response:
            # Only a JSON POST reaches the body: the library answers other methods (CORS
            # preflight, 400 for the rest) and other content types (400) itself.
            if request.method == "POST" and request.mimetype == "application/json":
                try:
                    read_body(request.get_data(cache=True))
                except InvalidRequest as exc:
                    return _refusal(callable_error(exc))
            return endpoint(request)

        return checked

    return decorate


def trigger_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Validate, store the job as queued, send ``video/long_form.requested`` (event id = jobId)."""
    return _answer(lambda: cloud.service.trigger(caller(req), req.data))


def cancel_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Mark the owner's job cancelled (no further segment starts) and tell Inngest to stop the run."""
    return _answer(lambda: cloud.service.cancel(caller(req), req.data))


def resume_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Continue the owner's failed job in place: only its missing scenes are generated."""
    return _answer(lambda: cloud.service.resume(caller(req), req.data))


def edit_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Make the next version of the owner's ended job, generating only the scenes the edit changes."""
    return _answer(lambda: cloud.service.edit(caller(req), req.data))


def playback_urls(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Fresh signed links to play the owner's job: the final video and each scene."""
    return _answer(lambda: cloud.service.playback(caller(req), req.data))


def delete_job(req: https_fn.CallableRequest[Any], cloud: Cloud) -> dict[str, Any]:
    """Delete the owner's job: cancelled first if running, then its files and its document."""
    return _answer(lambda: cloud.service.delete(caller(req), req.data))


def caller(req: https_fn.CallableRequest[Any]) -> Caller | None:
    from ..service import Caller

    # firebase_functions lets a call without a token through with auth None: the service refuses it.
    if req.auth is None or not req.auth.uid:
        return None
    token = req.auth.token
    provider = (token.get("firebase") or {}).get("sign_in_provider")
    own_budget = token.get(BUDGET_CLAIM)
    if not (isinstance(own_budget, int) and not isinstance(own_budget, bool) and own_budget >= 0):
        own_budget = None  # a claim that is not a whole number of seconds is ignored
    return Caller(str(req.auth.uid), anonymous=provider == "anonymous", seconds_per_day=own_budget)


def use_app_check_keys(jwks_url: str) -> None:
    """Verify App Check tokens against the keys at ``jwks_url`` instead of Google's (tests serve
    their own: App Check tokens cannot be minted offline). Before the first verification."""
    if jwks_url:
        from firebase_admin import app_check  # type: ignore[import-untyped]

        app_check._AppCheckService._JWKS_URL = jwks_url


def _answer(use_case: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return use_case()
    except Exception as exc:
        error = callable_error(exc)
        raise HttpsError(FunctionsErrorCode[error.status], error.message, error.details) from None


def _refusal(error: CallableError) -> Response:
    return Response(
        json.dumps(error.body()),
        status=error.http_status,
        content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"},  # as the library's own answers (cors="*")
    )
