"""The cloud composition root: clients and adapters are built on first use and cached, so
importing ``main.py`` (which ``firebase deploy`` does to discover the functions) stays cheap
and needs no credentials. Tests replace any of them with ``override``."""

from __future__ import annotations

import functools
from typing import Any

from ..errors import PermanentError
from ..ports import BlobStore, JobStore, Stitcher, VideoModel
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
    return _overrides.get("jobs") or _jobs()


def pipeline() -> Pipeline:
    return _overrides.get("pipeline") or _pipeline()


def blobs() -> BlobStore:
    return _overrides.get("blobs") or pipeline().blobs


def stitcher() -> Stitcher:
    return _overrides.get("stitcher") or pipeline().stitcher


@functools.cache
def _jobs() -> JobStore:
    from ..adapters.firestore_job_store import FirestoreJobStore

    return FirestoreJobStore(firestore_client(), params.JOBS_COLLECTION)


@functools.cache
def _pipeline() -> Pipeline:
    from ..adapters.pyav_frames import PyavFrameExtractor

    settings = params.settings()
    blobs = _blob_store(settings)
    return Pipeline(
        jobs=jobs(),
        blobs=blobs,
        model=_video_model(settings, blobs),
        frames=PyavFrameExtractor(blobs),
        stitcher=_stitcher(settings, blobs),
        signed_url_hours=settings.signed_url_hours,
        poll_seconds=settings.poll_seconds,
    )


def _blob_store(settings: params.CloudSettings) -> BlobStore:
    if settings.local_dir is not None:
        from ..adapters.local_blob_store import LocalBlobStore

        return LocalBlobStore(settings.local_dir)
    if not settings.bucket:
        raise PermanentError("set LONGFORM_BUCKET (or LONGFORM_LOCAL_DIR on the emulators)")
    from google.cloud import storage

    from ..adapters.gcs_blob_store import GcsBlobStore

    # With STORAGE_EMULATOR_HOST set the client talks to that emulator.
    return GcsBlobStore(storage.Client(project=settings.project), settings.bucket)


def _video_model(settings: params.CloudSettings, blobs: BlobStore) -> VideoModel:
    if settings.video_model == "preview":
        from ..adapters.preview_video_model import PreviewVideoModel

        return PreviewVideoModel(blobs)
    if settings.video_model != "veo":
        raise PermanentError(f"VIDEO_MODEL must be veo or preview, not {settings.video_model!r}")
    if not settings.bucket:
        raise PermanentError("Veo writes its videos to Cloud Storage: set LONGFORM_BUCKET")
    from ..adapters.veo_video_model import VeoVideoModel, veo_client

    client = veo_client(settings.project, settings.vertex_location, settings.vertex_base_url or None)
    return VeoVideoModel(client, settings.veo_model, settings.bucket)


def _stitcher(settings: params.CloudSettings, blobs: BlobStore) -> Stitcher:
    if settings.stitch_backend == "ffmpeg":
        from ..adapters.pyav_stitcher import PyavStitcher

        return PyavStitcher(blobs)
    if settings.stitch_backend != "transcoder":
        raise PermanentError(f"STITCH_BACKEND must be transcoder or ffmpeg, not {settings.stitch_backend!r}")
    if not settings.bucket:
        raise PermanentError("the Transcoder reads and writes Cloud Storage: set LONGFORM_BUCKET")
    from ..adapters.transcoder_stitcher import TranscoderStitcher, transcoder_client

    client = transcoder_client(settings.transcoder_endpoint or None)
    return TranscoderStitcher(client, settings.project, settings.transcoder_location, settings.bucket)
