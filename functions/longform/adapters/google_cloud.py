"""What every Google Cloud adapter shares: ``gs://`` URIs, resource labels, the server's
Retry-After hint, and credential failures (fetching a token can fail for a while — the metadata
server or the network is down — or for good: the credentials are refused)."""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from google.auth import exceptions as auth_exceptions

from ..errors import PermanentError, TransientError
from .blob_keys import key_parts


def gcs_uri(bucket: str, key: str) -> str:
    key_parts(key)
    return f"gs://{bucket}/{key}"


def gcs_key(bucket: str, uri: str, what: str = "the object") -> str:
    """The key of ``gs://<bucket>/<key>``; PermanentError naming ``what`` for any other URI."""
    prefix = f"gs://{bucket}/"
    if not uri.startswith(prefix):
        raise PermanentError(f"{what} is outside gs://{bucket}: {uri}")
    key = uri.removeprefix(prefix)
    key_parts(key)
    return key


def labels(job_id: str, user_id: str) -> dict[str, str]:
    """The labels that attribute a Veo generation or a Transcoder job (and its cost) to a job."""
    return {"jobid": label_value(job_id), "userid": label_value(user_id)}


def label_value(value: str) -> str:
    """Label values allow only lowercase letters, digits, ``_`` and ``-``, at most 63 characters.
    A value cut short keeps a hash of the whole, so two long ids still get different labels."""
    clean = re.sub(r"[^a-z0-9_-]", "_", value.lower())
    if len(clean) <= 63:
        return clean
    return f"{clean[:54]}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def retry_after(header: str | None, error_details: Iterable[object] = ()) -> float | None:
    """Seconds the server asked us to wait: a ``Retry-After`` header (seconds or an HTTP date),
    else a ``google.rpc.RetryInfo`` detail (``{"retryDelay": "30s"}``) of the error body."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    for detail in error_details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def credentials_error(service: str, exc: auth_exceptions.GoogleAuthError) -> TransientError | PermanentError:
    """The error to raise (``from exc``) when ``service``'s credentials failed."""
    if isinstance(exc, auth_exceptions.TransportError) or exc.retryable:
        return TransientError(f"{service}: credentials unavailable: {exc}")
    return PermanentError(f"{service}: credentials refused: {exc}")
