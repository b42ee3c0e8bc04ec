"""GcsBlobStore downloads are checked against the object's CRC32C, on the Cloud Storage emulator
through a proxy that damages what the emulator sends: a body with a flipped byte, a connection cut
mid-body (the library resumes it with a Range request, which its own check does not cover)."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google_crc32c
import pytest
from google.cloud.storage.retry import DEFAULT_RETRY  # type: ignore[import-untyped]

from devtools.storage_emulator import StorageEmulator
from longform.adapters import gcs_blob_store
from longform.adapters.gcs_blob_store import GcsBlobStore
from longform.errors import TransientError

FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.05)  # resumes without the 1 s back-off


@dataclass
class Download:
    range: str | None
    status: int
    hash: str | None  # the X-Goog-Hash header the emulator sent


@dataclass
class TamperingProxy:
    """Forwards every request to the emulator. Media downloads (``alt=media``) are noted and, while
    the counters last, damaged: ``flip`` flips a byte in the middle of a whole-object body, ``cut``
    sends half the body and drops the connection, ``flip_ranges`` flips a byte in every Range
    response."""

    upstream: str
    flip: int = 0
    cut: int = 0
    flip_ranges: bool = False
    downloads: list[Download] = field(default_factory=list)
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        proxy = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                cut = False
                if self.command == "GET" and "alt=media" in self.path:
                    ranged = self.headers.get("Range")
                    proxy.downloads.append(Download(ranged, response.status, response.getheader("X-Goog-Hash")))
                    if ranged is None and proxy.cut:
                        proxy.cut -= 1
                        cut = True
                    elif ranged is None and proxy.flip:
                        proxy.flip -= 1
                        data = flipped(data)
                    elif ranged is not None and proxy.flip_ranges:
                        data = flipped(data)
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def media(self) -> list[Download]:
        return list(self.downloads)


def flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.fixture
def proxy(storage_emulator: StorageEmulator) -> Iterator[TamperingProxy]:
    proxy = TamperingProxy(storage_emulator.url)
    thread = threading.Thread(target=proxy.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield proxy
    proxy.server.shutdown()
    proxy.server.server_close()
    thread.join()


@pytest.fixture
def bucket(storage_emulator: StorageEmulator) -> str:
    return storage_emulator.bucket("gcs-checksums")


@pytest.fixture
def segment(tmp_path: Path, storage_emulator: StorageEmulator, bucket: str) -> tuple[str, bytes]:
    """A 3 MB object (uploaded straight to the emulator) and its bytes."""
    key = f"jobs/{uuid.uuid4().hex}/segments/0.mp4"
    data = os.urandom(3 * 1000 * 1000)
    (tmp_path / "segment.mp4").write_bytes(data)
    GcsBlobStore(storage_emulator.client(), bucket).upload(key, tmp_path / "segment.mp4")
    return key, data


def proxied(emulator: StorageEmulator, proxy: TamperingProxy, bucket: str) -> GcsBlobStore:
    return GcsBlobStore(emulator.client(client_options={"api_endpoint": proxy.url}), bucket, retry=FAST_RETRY)


def crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.extend(0, data).to_bytes(4, "big")).decode("ascii")


def test_the_emulator_sends_the_objects_crc32c_with_whole_downloads_only(
    storage_emulator: StorageEmulator, proxy: TamperingProxy, bucket: str, segment: tuple[str, bytes]
) -> None:
    """What the emulator does (gcp-storage-emulator): X-Goog-Hash with crc32c and md5, computed at
    upload, on a whole-object download; nothing on a Range download (Cloud Storage sends the
    whole object's hashes there too)."""
    key, data = segment
    client = storage_emulator.client(client_options={"api_endpoint": proxy.url})
    blob = client.bucket(bucket).blob(key)

    assert blob.download_as_bytes() == data
    assert blob.download_as_bytes(start=10, end=99) == data[10:100]

    whole, ranged = proxy.media()
    assert whole.range is None and whole.hash == f"crc32c={crc32c(data)},md5={blob.md5_hash}"
    assert ranged.range == "bytes=10-99" and ranged.status == 206 and ranged.hash is None


def test_a_download_that_arrives_damaged_once_is_fetched_again(
    storage_emulator: StorageEmulator,
    proxy: TamperingProxy,
    bucket: str,
    segment: tuple[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    key, data = segment
    proxy.flip = 1

    with (
        caplog.at_level(logging.WARNING, logger=gcs_blob_store.__name__),
        proxied(storage_emulator, proxy, bucket).local_path(key) as path,
    ):
        assert path.read_bytes() == data

    assert [d.range for d in proxy.media()] == [None, None]
    [warning] = caplog.records
    assert key in warning.getMessage() and "fetching it again" in warning.getMessage()


def test_a_download_damaged_every_time_is_a_transient_error_and_leaves_no_file(
    tmp_path: Path,
    storage_emulator: StorageEmulator,
    proxy: TamperingProxy,
    bucket: str,
    segment: tuple[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, _ = segment
    proxy.flip = 1000
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))  # where the download's folder is made

    with (
        pytest.raises(TransientError, match="crc32c") as caught,
        proxied(storage_emulator, proxy, bucket).local_path(key),
    ):
        pytest.fail("a damaged download was handed out")

    assert f"gs://{bucket}/{key}" in str(caught.value)
    assert len(proxy.media()) == gcs_blob_store._DOWNLOAD_ATTEMPTS
    assert list(scratch.iterdir()) == []


def test_a_resumed_download_is_checked_too(
    storage_emulator: StorageEmulator, proxy: TamperingProxy, bucket: str, segment: tuple[str, bytes], tmp_path: Path
) -> None:
    """The connection drops mid-body; the library resumes with a Range request, whose (damaged)
    206 answer it does not check. The store's own check of the file catches it."""
    key, data = segment
    client = storage_emulator.client(client_options={"api_endpoint": proxy.url})
    proxy.cut, proxy.flip_ranges = 1, True
    bare = tmp_path / "bare.mp4"
    client.bucket(bucket).blob(key).download_to_filename(str(bare), checksum="crc32c", retry=FAST_RETRY)
    assert bare.read_bytes() != data  # the premise: the library alone hands out damaged bytes
    assert [(d.range is None, d.status) for d in proxy.media()] == [(True, 200), (False, 206)]
    proxy.downloads.clear()

    proxy.cut = 1
    with proxied(storage_emulator, proxy, bucket).local_path(key) as path:
        assert path.read_bytes() == data

    assert [(d.range is None, d.status) for d in proxy.media()] == [(True, 200), (False, 206), (True, 200)]
