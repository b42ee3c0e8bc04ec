"""The cloud composition root: clients and adapters are built on first use and cached, so
importing ``main.py`` (which ``firebase deploy`` does to discover the functions) stays cheap
and needs no credentials. Tests replace any of them with ``override``."""

from __future__ import annotations

import functools
from typing import Any

from ..errors import PermanentError
from ..ports import BlobStore, JobStore, Stitcher
from ..workflow import Pipeline
from . import params

_overrides: dict[str, Any] = {}


def override(**things: Any) -> None:
    """Use these instead of the real ones: ``jobs``, ``pipeline``, ``blobs``, ``stitcher``."""
    _overrides.update(things)


def reset() -> None:
    _overrides.clear()
    for cached in (firestore_client, _jobs, _pipeline):
        cached.cache_clear()


@functools.cache
def firestore_client() -> Any:
    from google.cloud import firestore

    # With FIRESTORE_EMULATOR_HOST set the client talks to the emulator, with no credentials.
    return firestore.Client(project=params.settings().project)


def jobs() -> JobStore:
    return _overrides.get("jobs") or _jobs()  # type: ignore[no-any-return]


def pipeline() -> Pipeline:
    return _overrides.get("pipeline") or _pipeline()  # type: ignore[no-any-return]


def blobs() -> BlobStore:
    return _overrides.get("blobs") or pipeline().blobs  # type: ignore[no-any-return]


def stitcher() -> Stitcher:
    return _overrides.get("stitcher") or pipeline().stitcher  # type: ignore[no-any-return]


@functools.cache
def _jobs() -> JobStore:
    from ..adapters.firestore_job_store import FirestoreJobStore

    return FirestoreJobStore(firestore_client(), params.JOBS_COLLECTION)


@functools.cache
def _pipeline() -> Pipeline:
    settings = params.settings()
    if settings.local_dir is None:
        raise PermanentError(
            "LONGFORM_BUCKET needs the Cloud Storage adapter, which is not built yet; "
            "set LONGFORM_LOCAL_DIR to keep files in a local folder"
        )
    from ..adapters.local_blob_store import LocalBlobStore
    from ..adapters.preview_video_model import PreviewVideoModel
    from ..adapters.pyav_frames import PyavFrameExtractor
    from ..adapters.pyav_stitcher import PyavStitcher

    if settings.video_model != "preview":
        raise PermanentError(f"VIDEO_MODEL={settings.video_model} is not built yet; use preview")
    if settings.stitch_backend != "ffmpeg":
        raise PermanentError(f"STITCH_BACKEND={settings.stitch_backend} is not built yet; use ffmpeg")
    blobs = LocalBlobStore(settings.local_dir)
    return Pipeline(
        jobs=jobs(),
        blobs=blobs,
        model=PreviewVideoModel(blobs),
        frames=PyavFrameExtractor(blobs),
        stitcher=PyavStitcher(blobs),
        poll_seconds=settings.poll_seconds,
    )
