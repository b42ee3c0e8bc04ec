"""GcsBlobStore with the real storage client against the Cloud Storage emulator (and, for the
failures the emulator cannot produce, a local server that answers every request with one status)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.auth import compute_engine
from google.oauth2 import service_account

from devtools.servers import free_port
from devtools.storage_emulator import StorageEmulator
from longform.adapters import gcs_blob_store
from longform.adapters.gcs_blob_store import GcsBlobStore
from longform.errors import PermanentError, TransientError

SIGNER = "longform-signer@demo-longform-test.iam.gserviceaccount.com"
MiB = 1024 * 1024


@pytest.fixture
def bucket(storage_emulator: StorageEmulator) -> str:
    return storage_emulator.bucket("gcs-store")


@pytest.fixture
def store(storage_emulator: StorageEmulator, bucket: str) -> GcsBlobStore:
    return GcsBlobStore(storage_emulator.client(), bucket)


def job_id() -> str:
    return uuid.uuid4().hex


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


class RecordingSession(requests.Session):
    """The client's HTTP session, noting each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        self.sent.append((str(method), str(url)))
        return super().request(method, url, *args, **kwargs)


# --- objects -------------------------------------------------------------------------------------


def test_a_5mb_segment_round_trips_byte_exact_through_a_temporary_file(tmp_path: Path, store: GcsBlobStore) -> None:
    key = f"jobs/{job_id()}/segments/0.mp4"
    source = random_file(tmp_path / "segment.mp4", 5 * 1000 * 1000)
    assert not store.exists(key)

    store.upload(key, source)

    assert store.exists(key)
    with store.local_path(key) as path:
        assert path.name == "0.mp4"
        assert path.read_bytes() == source.read_bytes()
        folder = path.parent
    assert not path.exists() and not folder.exists()
    blob = store.client.bucket(store.bucket).get_blob(key)
    assert (blob.size, blob.content_type) == (5 * 1000 * 1000, "video/mp4")


def test_a_file_over_8_mib_goes_up_resumably_in_chunks(
    tmp_path: Path, storage_emulator: StorageEmulator, bucket: str
) -> None:
    session = RecordingSession()
    store = GcsBlobStore(storage_emulator.client(_http=session), bucket, chunk_size=1 * MiB)
    key = f"jobs/{job_id()}/final/video.mp4"
    source = random_file(tmp_path / "video.mp4", 9 * MiB + 123)

    store.upload(key, source)

    assert any("uploadType=resumable" in url for method, url in session.sent if method == "POST")
    assert sum(method == "PUT" for method, _ in session.sent) == 10  # 9 full chunks and the rest
    with store.local_path(key) as path:
        assert path.read_bytes() == source.read_bytes()


def test_frames_are_stored_as_png(tmp_path: Path, store: GcsBlobStore) -> None:
    key = f"jobs/{job_id()}/frames/0.png"
    store.upload(key, random_file(tmp_path / "frame.png", 1000))
    assert store.client.bucket(store.bucket).get_blob(key).content_type == "image/png"


def test_lists_the_keys_under_a_job(tmp_path: Path, store: GcsBlobStore) -> None:
    job, neighbour = job_id(), job_id()
    source = random_file(tmp_path / "x", 10)
    mine = [f"jobs/{job}/frames/0.png", f"jobs/{job}/segments/0.mp4", f"jobs/{job}/segments/1.mp4"]
    for key in [*mine, f"jobs/{job}x/segments/0.mp4", f"jobs/{neighbour}/segments/0.mp4"]:
        store.upload(key, source)

    assert store.list(f"jobs/{job}/") == mine
    assert store.list(f"jobs/{job_id()}/") == []
    assert len(store.list()) == 5
    with pytest.raises(PermanentError, match="blob key"):
        store.list("jobs/../")


def test_delete_removes_the_blob_and_a_missing_one_is_fine(tmp_path: Path, store: GcsBlobStore) -> None:
    key = f"jobs/{job_id()}/segments/0.mp4"
    store.upload(key, random_file(tmp_path / "x", 10))
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)


def test_reading_a_missing_blob_is_a_permanent_error(store: GcsBlobStore) -> None:
    with pytest.raises(PermanentError, match="no blob") as caught, store.local_path("jobs/none/segments/0.mp4"):
        pass
    assert caught.value.__cause__ is not None


def test_invalid_keys_are_refused_before_any_request(
    tmp_path: Path, storage_emulator: StorageEmulator, bucket: str
) -> None:
    session = RecordingSession()
    store = GcsBlobStore(storage_emulator.client(_http=session), bucket)
    source = random_file(tmp_path / "x", 10)
    operations: list[Callable[[str], object]] = [
        store.exists,
        lambda key: store.upload(key, source),
        lambda key: store.local_path(key).__enter__(),
        store.delete,
        store.uri,
        lambda key: store.signed_url(key, timedelta(hours=1)),
    ]
    for key in ["", "/abs", "../up", "jobs/../x", "jobs//x", "jobs/x/", "jobs/a b"]:
        for operation in operations:
            with pytest.raises(PermanentError, match="blob key"):
                operation(key)
    assert session.sent == []
    store.exists("jobs/fine.mp4")
    assert any("jobs%2Ffine.mp4" in url for _, url in session.sent)  # the session does see a valid key's


def test_uris_name_the_bucket_and_read_back_to_keys(store: GcsBlobStore) -> None:
    key = "jobs/j1/final/video.mp4"
    assert store.uri(key) == f"gs://{store.bucket}/{key}"
    assert store.key_of(store.uri(key)) == key
    for uri in [
        f"gs://other-bucket/{key}",
        f"gs://{store.bucket}x/{key}",
        f"file:///{key}",
        key,
        f"gs://{store.bucket}/",
    ]:
        with pytest.raises(PermanentError):
            store.key_of(uri)


# --- failures the emulator cannot produce ---------------------------------------------------------


@dataclass
class FaultServer:
    """Answers every request with ``status`` and a Cloud Storage style error body."""

    status: int = 503
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        fault = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"error": {"code": fault.status, "message": "injected"}}).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def fault() -> Iterator[FaultServer]:
    fault = FaultServer()
    thread = threading.Thread(target=fault.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fault
    fault.server.shutdown()
    fault.server.server_close()
    thread.join()


OPERATIONS = {
    "exists": lambda store, source: store.exists("jobs/j/segments/0.mp4"),
    "upload": lambda store, source: store.upload("jobs/j/segments/0.mp4", source),
    "download": lambda store, source: store.local_path("jobs/j/segments/0.mp4").__enter__(),
    "delete": lambda store, source: store.delete("jobs/j/segments/0.mp4"),
    "list": lambda store, source: store.list("jobs/j/"),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    ("status", "error"),
    [(429, TransientError), (500, TransientError), (503, TransientError), (400, PermanentError), (403, PermanentError)],
)
def test_server_errors_map_to_transient_and_refusals_to_permanent(
    tmp_path: Path,
    storage_emulator: StorageEmulator,
    fault: FaultServer,
    operation: str,
    status: int,
    error: type[Exception],
) -> None:
    fault.status = status
    client = storage_emulator.client(client_options={"api_endpoint": fault.url})
    store = GcsBlobStore(client, "faulty", retry=None)  # the durable steps retry, not the client

    with pytest.raises(error) as caught:
        OPERATIONS[operation](store, random_file(tmp_path / "x", 10))

    assert "gs://faulty/jobs/j/" in str(caught.value)
    assert getattr(caught.value.__cause__, "code", None) == status


def test_an_unreachable_server_is_a_transient_error(storage_emulator: StorageEmulator) -> None:
    client = storage_emulator.client(client_options={"api_endpoint": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(TransientError) as caught:
        GcsBlobStore(client, "nowhere", retry=None).exists("jobs/j/segments/0.mp4")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


# --- signed URLs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_pair() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_credentials(key: rsa.RSAPrivateKey) -> service_account.Credentials:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "project_id": "demo-longform-test",
            "private_key_id": "throwaway",
            "private_key": pem.decode(),
            "client_email": SIGNER,
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",  # never called: signing needs no token
        }
    )


def verify_v4(url: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Check ``url``'s V4 signature with the public key (the emulator never does); return its query."""
    parts = urlsplit(url)
    query, _, signature = parts.query.partition("&X-Goog-Signature=")
    params = dict(parse_qsl(query))
    canonical_request = "\n".join(["GET", parts.path, query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key.public_key().verify(bytes.fromhex(signature), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return params


def test_a_service_account_key_signs_a_v4_get_url(
    tmp_path: Path, storage_emulator: StorageEmulator, store: GcsBlobStore, key_pair: rsa.RSAPrivateKey
) -> None:
    key = f"jobs/{job_id()}/final/video.mp4"
    source = random_file(tmp_path / "video.mp4", 1000)
    store.upload(key, source)
    signing = GcsBlobStore(storage_emulator.client(credentials=service_account_credentials(key_pair)), store.bucket)

    url = signing.signed_url(key, timedelta(hours=6))

    assert url is not None
    assert urlsplit(url).path == f"/{store.bucket}/{key}"
    params = verify_v4(url, key_pair)
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Credential"].startswith(f"{SIGNER}/")
    assert params["X-Goog-Expires"] == str(6 * 3600)
    with urllib.request.urlopen(url, timeout=10) as response:  # the emulator serves it (unchecked)
        assert response.read() == source.read_bytes()


def test_an_anonymous_client_signs_with_the_key_file_adc_names(
    tmp_path: Path,
    storage_emulator: StorageEmulator,
    store: GcsBlobStore,
    key_pair: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The emulators' case: the storage client is anonymous, GOOGLE_APPLICATION_CREDENTIALS names
    a key that can sign; the URL points at the emulator and downloads the file."""
    key = f"jobs/{job_id()}/final/video.mp4"
    source = random_file(tmp_path / "video.mp4", 1000)
    store.upload(key, source)
    info = service_account_credentials(key_pair)
    pem = key_pair.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "demo-longform-test",
                "private_key_id": "throwaway",
                "private_key": pem.decode(),
                "client_email": info.service_account_email,
                "client_id": "1",
                "token_uri": "http://127.0.0.1:9/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    gcs_blob_store._default_signer.cache_clear()
    try:
        url = store.signed_url(key, timedelta(minutes=10))
    finally:
        gcs_blob_store._default_signer.cache_clear()
    assert url is not None and url.startswith(f"{storage_emulator.url}/{store.bucket}/{key}?")
    verify_v4(url, key_pair)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == source.read_bytes()


def test_signed_urls_live_at_most_7_days(
    storage_emulator: StorageEmulator, bucket: str, key_pair: rsa.RSAPrivateKey
) -> None:
    signing = GcsBlobStore(storage_emulator.client(credentials=service_account_credentials(key_pair)), bucket)
    url = signing.signed_url("jobs/j/final/video.mp4", timedelta(days=7))
    assert url is not None and verify_v4(url, key_pair)["X-Goog-Expires"] == str(7 * 24 * 3600)
    for too_long in (timedelta(days=7, seconds=1), timedelta(days=30), timedelta(0), timedelta(seconds=-5)):
        with pytest.raises(ValueError, match="7 days"):
            signing.signed_url("jobs/j/final/video.mp4", too_long)


def test_credentials_that_cannot_sign_give_no_url_and_say_why_once(
    store: GcsBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="longform.adapters.gcs_blob_store"):
        assert store.signed_url("jobs/j/final/video.mp4", timedelta(hours=1)) is None
        assert store.signed_url("jobs/j/final/video.mp4", timedelta(hours=1)) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "credentials cannot sign" in record.getMessage()
    assert "AnonymousCredentials" in record.getMessage()


@dataclass
class FakeResponse:
    status: int
    data: bytes
    headers: dict[str, str]


@dataclass
class FakeGoogleAuth:
    """A google.auth transport answering as Cloud Functions' metadata server and the IAM
    signBlob API would, signing with ``key``; ``refuse`` answers signBlob as IAM does without
    the permission. Notes every URL asked for."""

    key: rsa.RSAPrivateKey
    refuse: bool = False
    asked: list[str] = field(default_factory=list)

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **_: Any) -> FakeResponse:
        self.asked.append(url)
        if "/computeMetadata/v1/instance/service-accounts/default/token" in url:
            return self.json({"access_token": "metadata-token", "expires_in": 3600, "token_type": "Bearer"})
        if "/computeMetadata/v1/instance/service-accounts/default/" in url:
            return self.json({"email": SIGNER, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})
        if url == f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SIGNER}:signBlob":
            assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer metadata-token"
            if self.refuse:
                return self.json({"error": {"code": 403, "status": "PERMISSION_DENIED"}}, 403)
            payload = base64.b64decode(json.loads(body)["payload"])
            signature = self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
            return self.json({"keyId": "k", "signedBlob": base64.b64encode(signature).decode()})
        return self.json({"error": "not found"}, 404)

    @staticmethod
    def json(value: object, status: int = 200) -> FakeResponse:
        headers = {"content-type": "application/json", "metadata-flavor": "Google"}
        return FakeResponse(status, json.dumps(value).encode(), headers)


def metadata_server_store(emulator: StorageEmulator, bucket: str, google: FakeGoogleAuth) -> GcsBlobStore:
    """A store holding the credentials Cloud Functions gives: the metadata server's, with no key."""
    credentials = compute_engine.Credentials(universe_domain="googleapis.com")
    return GcsBlobStore(emulator.client(credentials=credentials), bucket, auth_request=google)  # type: ignore[arg-type]


def test_metadata_server_credentials_sign_through_iam_sign_blob(
    storage_emulator: StorageEmulator, bucket: str, key_pair: rsa.RSAPrivateKey
) -> None:
    google = FakeGoogleAuth(key_pair)
    store = metadata_server_store(storage_emulator, bucket, google)

    url = store.signed_url("jobs/j/final/video.mp4", timedelta(hours=1))

    assert url is not None
    params = verify_v4(url, key_pair)
    assert params["X-Goog-Credential"].startswith(f"{SIGNER}/")  # the email the metadata server named
    assert params["X-Goog-Expires"] == "3600"
    assert any(u.endswith(":signBlob") for u in google.asked)


def test_a_refused_sign_blob_gives_no_url_and_names_the_missing_permission(
    storage_emulator: StorageEmulator, bucket: str, key_pair: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    store = metadata_server_store(storage_emulator, bucket, FakeGoogleAuth(key_pair, refuse=True))
    with caplog.at_level(logging.WARNING, logger="longform.adapters.gcs_blob_store"):
        assert store.signed_url("jobs/j/final/video.mp4", timedelta(hours=1)) is None
    [record] = caplog.records
    assert "roles/iam.serviceAccountTokenCreator" in record.getMessage()
    assert SIGNER in record.getMessage()
