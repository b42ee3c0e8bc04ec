"""Credential failures of any Google client, mapped once: fetching a token can fail for a while
(the metadata server or the network is down) or for good (the credentials are refused)."""

from __future__ import annotations

from google.auth import exceptions as auth_exceptions

from ..errors import PermanentError, TransientError


def credentials_error(service: str, exc: auth_exceptions.GoogleAuthError) -> TransientError | PermanentError:
    """The error to raise (``from exc``) when ``service``'s credentials failed."""
    if isinstance(exc, auth_exceptions.TransportError) or exc.retryable:
        return TransientError(f"{service}: credentials unavailable: {exc}")
    return PermanentError(f"{service}: credentials refused: {exc}")
