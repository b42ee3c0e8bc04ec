"""Blobs as Cloud Storage objects in one bucket: the cloud BlobStore.

Vendor errors become TransientError (429, 408, 5xx, connection trouble, corrupt downloads) or
PermanentError (everything else a retry will not fix), chained with ``from exc``.

Downloads are checked against the object's CRC32C, twice over: the storage library checks the
body of a whole-object response against its ``X-Goog-Hash`` header (``checksum="crc32c"``), but
not a download it resumed with a Range request after a dropped connection (a 206 response carries
no checksum of its own), so the file on disk is also checked against the object's CRC32C (from the
response headers, or the object's metadata when they had none). A mismatch is fetched again, up to
``_DOWNLOAD_ATTEMPTS`` times, then is a TransientError (the step retries later).

Signed URLs: a service-account key signs locally. Cloud Functions' default credentials (the
metadata server's) hold no key, so they sign through the IAM signBlob API, which needs the runtime
service account to hold ``iam.serviceAccounts.signBlob`` on itself (role Service Account Token
Creator) and the IAM Service Account Credentials API enabled. Any other credentials cannot sign.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

import google.auth
import google.auth.exceptions
import google.auth.iam
import google.auth.transport
import google.auth.transport.requests
import google_crc32c
import requests.exceptions
import urllib3.exceptions
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth.credentials import Credentials, Signing
from google.cloud.storage import exceptions as storage_exceptions  # type: ignore[import-untyped]  # no hints
from google.cloud.storage.retry import DEFAULT_RETRY  # type: ignore[import-untyped]
from google.oauth2 import service_account

from ..errors import PermanentError, TransientError
from ..processes import scratch_dir
from .blob_keys import key_parts
from .google_cloud import gcs_key, gcs_uri

log = logging.getLogger(__name__)

MAX_SIGNED_URL_AGE = timedelta(days=7)  # the V4 signing limit
CONTENT_TYPES = {".mp4": "video/mp4", ".png": "image/png"}
_CHUNK = 16 * 1024 * 1024  # resumable chunk: bounds memory per upload and what a retry re-sends
_DOWNLOAD_ATTEMPTS = 3  # downloads whose bytes fail the CRC32C check are fetched again, this often in all

_TRANSIENT_STATUS = {http.client.REQUEST_TIMEOUT, http.client.TOO_MANY_REQUESTS}
# What the storage library's own retry predicate treats as a passing network failure.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    http.client.HTTPException,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    google.auth.exceptions.TransportError,
    api_exceptions.RetryError,  # the library's own retries ran out of time
)


class GcsBlobStore:
    """``client`` is a ``google.cloud.storage.Client``. ``retry`` applies to every request,
    uploads included (an upload replaces the whole object, so repeating it is safe); None turns
    retries off and leaves them to the durable steps. ``chunk_size`` (a multiple of 256 KiB) is the
    resumable-upload chunk; the library uploads files above 8 MiB resumably, smaller ones in one
    request. ``auth_request`` is the transport for the metadata server and IAM (tests replace it)."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        retry: Retry | None = DEFAULT_RETRY,
        chunk_size: int = _CHUNK,
        auth_request: google.auth.transport.Request | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.client = client
        self.bucket = bucket
        self._retry = retry
        self._chunk_size = chunk_size
        self._auth_request = auth_request
        self._told_cannot_sign = False

    def uri(self, key: str) -> str:
        return gcs_uri(self.bucket, key)

    def key_of(self, uri: str) -> str:
        """The key of ``gs://<this bucket>/<key>``; PermanentError for any other URI."""
        return gcs_key(self.bucket, uri)

    def exists(self, key: str) -> bool:
        blob = self._blob(key)
        with self._mapped("check", key):
            return bool(blob.exists(retry=self._retry))

    def upload(self, key: str, path: Path) -> None:
        # A Cloud Storage object appears only once its upload completes: readers never see half.
        blob = self._blob(key)
        blob.chunk_size = self._chunk_size  # on this Blob only: downloads stay one streamed request
        content_type = CONTENT_TYPES.get(PurePosixPath(key).suffix.lower(), "application/octet-stream")
        with self._mapped("upload", key):
            blob.upload_from_filename(str(path), content_type=content_type, retry=self._retry)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        self._blob(key)  # the key is checked before any folder is made
        with scratch_dir("gcs") as folder:
            path = folder / PurePosixPath(key).name  # keep the name: media tools read the suffix
            self._download(key, path)
            yield path

    def _download(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path``, its bytes checked against the object's CRC32C."""
        for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
            blob = self._blob(key)  # a fresh one: a used Blob downloads from its stored mediaLink
            mismatch: Exception | None = None
            with self._mapped("download", key, missing=f"no blob {key!r} in gs://{self.bucket}"):
                try:
                    blob.download_to_filename(str(path), checksum="crc32c", retry=self._retry)
                    problem = self._crc32c_problem(blob, path)
                except storage_exceptions.DataCorruption as exc:  # the library's own check of the body
                    mismatch, problem = exc, "its bytes do not match the object's crc32c"
            if problem is None:
                return
            if attempt < _DOWNLOAD_ATTEMPTS:
                log.warning(
                    "download of gs://%s/%s failed its checksum (%s), attempt %d of %d; fetching it again",
                    self.bucket,
                    key,
                    problem,
                    attempt,
                    _DOWNLOAD_ATTEMPTS,
                )
                continue
            raise TransientError(
                f"download gs://{self.bucket}/{key}: {problem} ({_DOWNLOAD_ATTEMPTS} downloads in a row); "
                "a later attempt fetches it again"
            ) from mismatch

    def _crc32c_problem(self, blob: Any, path: Path) -> str | None:
        """Why the file at ``path`` is not the object's bytes, or None. The expected CRC32C comes
        from the download's headers (the library sets ``blob.crc32c`` from ``X-Goog-Hash``), else
        from the metadata of the generation downloaded."""
        expected = blob.crc32c
        if expected is None:  # no X-Goog-Hash on the (last) response: ask the metadata of that generation
            stored = self.client.bucket(self.bucket).get_blob(blob.name, generation=blob.generation, retry=self._retry)
            expected = stored.crc32c if stored is not None else None
        if expected is None:  # Cloud Storage keeps a CRC32C for every object; a stand-in may not
            log.info("gs://%s/%s has no crc32c to check its download against", self.bucket, blob.name)
            return None
        crc = 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1024 * 1024), b""):
                crc = google_crc32c.extend(crc, chunk)
        actual = base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")
        if actual != expected:
            return f"the {path.stat().st_size:,} bytes downloaded have crc32c {actual}, the object {expected}"
        return None

    def delete(self, key: str) -> None:
        blob = self._blob(key)
        with self._mapped("delete", key), contextlib.suppress(api_exceptions.NotFound):  # already gone is fine
            blob.delete(retry=self._retry)

    def list(self, prefix: str = "") -> list[str]:
        """Keys that start with ``prefix`` (``jobs/{jobId}/``), in name order."""
        if prefix:
            key_parts(prefix.removesuffix("/"))
        with self._mapped("list", prefix):
            return [blob.name for blob in self.client.list_blobs(self.bucket, prefix=prefix, retry=self._retry)]

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        """A V4 signed GET URL valid for ``expires`` (at most 7 days), or None when these
        credentials cannot sign (the reason is logged; callers keep the ``gs://`` URI)."""
        if not timedelta(seconds=1) <= expires <= MAX_SIGNED_URL_AGE:
            raise ValueError(f"a signed URL lives from 1 second to 7 days, not {expires}")
        blob = self._blob(key)
        signer = self._signing_credentials()
        if signer is None:
            return None
        try:
            url: str = blob.generate_signed_url(
                version="v4", expiration=int(expires.total_seconds()), method="GET", credentials=signer
            )
        except google.auth.exceptions.GoogleAuthError as exc:  # the IAM signBlob call failed
            log.warning(
                "signing gs://%s/%s through IAM signBlob failed, returning no signed URL: %s. If it was refused, "
                "grant %s roles/iam.serviceAccountTokenCreator on itself (iam.serviceAccounts.signBlob) and enable "
                "iamcredentials.googleapis.com",
                self.bucket,
                key,
                exc,
                signer.signer_email,
            )
            return None
        return url

    def _signing_credentials(self) -> Signing | None:
        credentials = self.client._credentials  # what the library itself signs with
        if isinstance(credentials, Signing):  # a service-account key (or impersonation)
            return credentials
        if hasattr(credentials, "service_account_email"):  # the metadata server's: sign through IAM
            request = self._auth_request or google.auth.transport.requests.Request()
            try:
                if not credentials.valid:  # the email reads "default" until the first refresh
                    credentials.refresh(request)
            except google.auth.exceptions.GoogleAuthError as exc:
                log.warning("cannot sign URLs: refreshing %s failed: %s", type(credentials).__name__, exc)
                return None
            return _IamSigning(request, credentials, credentials.service_account_email)
        own = _default_signer()  # the client talks anonymously (the emulator), the key beside it can sign
        if own is not None:
            return own
        if not self._told_cannot_sign:  # a configuration fact: say it once, not on every status read
            self._told_cannot_sign = True
            log.warning(
                "credentials cannot sign: %s holds no private key and no service account for IAM signBlob; "
                "returning no signed URL (callers keep the gs:// URI). Use a service account",
                type(credentials).__name__,
            )
        return None

    def _blob(self, key: str) -> Any:
        key_parts(key)  # before anything reaches the network
        return self.client.bucket(self.bucket).blob(key)

    @contextmanager
    def _mapped(self, action: str, key: str, missing: str | None = None) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            _raise_mapped(exc, f"{action} gs://{self.bucket}/{key}", missing)


@functools.cache
def _default_signer() -> Signing | None:
    """The key file Application Default Credentials name (GOOGLE_APPLICATION_CREDENTIALS), if it
    can sign. Read from the file alone: asking google.auth.default() would probe the metadata
    server over the network."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        return None
    try:
        info = json.loads(Path(path).read_text())
        if info.get("type") != "service_account":
            return None  # a user's or an external account's credentials: no key to sign with
        return service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call,no-any-return]
    except (OSError, ValueError) as exc:
        log.warning("cannot sign with the key in %s: %s", path, exc)
        return None


def _raise_mapped(exc: Exception, what: str, missing: str | None) -> NoReturn:
    if isinstance(exc, api_exceptions.NotFound) and missing:
        raise PermanentError(missing) from exc
    status = _status(exc)
    if isinstance(exc, _TRANSIENT_TYPES) or status in _TRANSIENT_STATUS or (status or 0) >= 500:
        raise TransientError(f"{what}: {exc}") from exc
    if isinstance(exc, storage_exceptions.DataCorruption):  # checksum mismatch: fetch again
        raise TransientError(f"{what}: {exc}") from exc
    if isinstance(exc, google.auth.exceptions.RefreshError) and exc.retryable:
        raise TransientError(f"{what}: {exc}") from exc
    if status is not None or isinstance(exc, google.auth.exceptions.GoogleAuthError):
        raise PermanentError(f"{what}: {exc}") from exc
    raise exc  # not a Cloud Storage failure (a local file error, a bug): let it show as it is


def _status(exc: Exception) -> int | None:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code
    if isinstance(exc, storage_exceptions.InvalidResponse):
        return int(exc.response.status_code)
    return None


class _IamSigning(Signing):
    """Signing for keyless credentials: each signature is one IAM signBlob call."""

    def __init__(self, request: google.auth.transport.Request, credentials: Credentials, email: str) -> None:
        self._signer = google.auth.iam.Signer(request, credentials, email)  # type: ignore[no-untyped-call]
        self._email = email

    def sign_bytes(self, message: bytes) -> bytes:
        return bytes(self._signer.sign(message))

    @property
    def signer_email(self) -> str:
        return self._email

    @property
    def signer(self) -> google.auth.iam.Signer:
        return self._signer
