"""The local composition root: the one place that names the embedded adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .adapters.local_blob_store import LocalBlobStore
from .adapters.notifying_job_store import NotifyingJobStore
from .adapters.sqlite import Database
from .adapters.sqlite_job_store import SqliteJobStore
from .budget import SpendLimits
from .config import Settings
from .job import Job
from .local_runner import LocalRunner, RetryPolicy, ThreadEngine
from .ports import BlobStore, JobStore, VideoModel
from .prices import Pricing
from .request import Limits
from .service import Caller, JobService
from .workflow import Pipeline

LOCAL_USER = Caller("local")  # the embedded mode has one user
LOCAL_SECONDS_PER_DAY = 86_400  # the preview renderer costs nothing: a day of video a day, unless set


@dataclass(frozen=True)
class Local:
    """The embedded pipeline, its runner and the use cases over them, under ``settings.data_dir``."""

    settings: Settings
    db: Database
    pipeline: Pipeline
    runner: LocalRunner
    engine: ThreadEngine
    service: JobService


def local(
    settings: Settings,
    model: Callable[[BlobStore], VideoModel] | None = None,
    on_update: Callable[[Job], None] | None = None,
    max_active_jobs: int | None = None,
    link: Callable[[str], str | None] = lambda key: None,
) -> Local:
    """Everything offline: SQLite jobs, a blob folder, the preview renderer, the PyAV stitcher.
    ``model`` builds a replacement for the renderer from the blob store (tests, benchmarks);
    ``on_update`` hears every write to a job; ``link`` makes a URL to play a file (the local
    server's). Local jobs have no active-job limit by default: a
    killed run stays unfinished until resumed, and must not lock its user out."""
    from .adapters.preview_video_model import PreviewVideoModel
    from .adapters.pyav_checker import PyavMediaChecker
    from .adapters.pyav_frames import PyavFrameExtractor
    from .adapters.pyav_stitcher import PyavStitcher

    # Nothing is billed here: jobs are priced as if made in the cloud with the model and the
    # Transcoder a deployment uses by default, and marked as an estimate.
    pricing = Pricing(settings.prices, settings.veo_model, "transcoder", estimated=True)
    db = Database(settings.db_path)
    blobs = LocalBlobStore(settings.blob_dir)
    jobs: JobStore = SqliteJobStore(db)
    if on_update is not None:
        jobs = NotifyingJobStore(jobs, on_update)
    pipeline = Pipeline(
        jobs=jobs,
        blobs=blobs,
        model=(model or PreviewVideoModel)(blobs),
        frames=PyavFrameExtractor(blobs),
        stitcher=PyavStitcher(blobs),
        checker=PyavMediaChecker(blobs),
        pricing=pricing,
        poll_seconds=settings.poll_seconds,
        poll_budget_seconds=settings.poll_budget_seconds,
        poll_floor_seconds=settings.poll_floor_seconds,
        max_wait_seconds=settings.max_wait_seconds,
    )
    retry = RetryPolicy(settings.retry_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
    runner = LocalRunner(pipeline, db, retry, settings.concurrency)
    engine = ThreadEngine(runner, settings.max_running_jobs, settings.lease_seconds)
    # The same budget rules as in the cloud, with a generous limit unless USER_SECONDS_PER_DAY is set.
    set_here = "user_seconds_per_day" in settings.model_fields_set
    budget = SpendLimits(settings.user_seconds_per_day if set_here else LOCAL_SECONDS_PER_DAY)
    limits = Limits.of("preview", settings.veo_model, "ffmpeg")
    service = JobService(
        jobs, engine, limits, max_active_jobs, budget=budget, pricing=pricing, blobs=lambda: blobs, link=link
    )
    return Local(settings, db, pipeline, runner, engine, service)
