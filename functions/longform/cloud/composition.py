"""The cloud composition root: the one place that names the cloud adapters.

``main.py`` makes one ``Cloud`` and hands it to every entry point; tests make their own, giving
fakes for any part (``Cloud(settings, jobs=…, pipeline=…)``). Each part is built on first use
and kept, so importing ``main.py`` (which ``firebase deploy`` does to discover the functions)
builds nothing and needs no credentials, and a callable never imports the Veo SDK. The modules
behind a part (the Inngest SDK, the Google Cloud clients, the service and the workflow) are
imported when the part is first built: each deployed function imports ``main.py`` when its
instance starts cold, and pays only for what it uses (``bench/cold_import.py``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..config import JOBS_COLLECTION, Settings
from ..errors import PermanentError
from ..prices import Pricing
from ..request import Limits

if TYPE_CHECKING:
    import inngest

    from ..ports import BlobStore, Engine, FrameExtractor, JobStore, MediaChecker, Stitcher, VideoModel
    from ..service import JobService
    from ..workflow import Pipeline

_PIPELINE_PARTS = {"jobs", "blobs", "model", "frames", "stitcher", "checker"}


class Cloud:
    def __init__(self, settings: Settings | None = None, **given: Any) -> None:
        """``given`` replaces parts by name: settings, inngest, firestore, jobs, blobs, model,
        frames, stitcher, checker, pipeline, engine, service."""
        self._settings = settings
        self._given = given

    def _part(self, name: str) -> Any:
        """A given part; a given pipeline also gives its jobs, blobs, model, frames, stitcher and
        checker."""
        if name in self._given:
            return self._given[name]
        pipeline = self._given.get("pipeline")
        return getattr(pipeline, name, None) if name in _PIPELINE_PARTS else None

    @cached_property
    def settings(self) -> Settings:
        # Firebase puts the params in the environment; read (and checked) at run time, once.
        return self._settings or Settings.from_env()

    @cached_property
    def inngest(self) -> inngest.Inngest:
        """The Inngest client. It reads INNGEST_EVENT_KEY / INNGEST_SIGNING_KEY / INNGEST_DEV from
        the environment (where Firebase puts the secrets); only serving or sending needs them."""
        if client := self._part("inngest"):
            return client  # type: ignore[no-any-return]
        import inngest

        from .inngest_client import APP_ID

        return inngest.Inngest(app_id=APP_ID)

    @cached_property
    def firestore(self) -> Any:
        if client := self._part("firestore"):
            return client
        from google.cloud import firestore

        # With FIRESTORE_EMULATOR_HOST set the client talks to the emulator, with no credentials.
        return firestore.Client(project=self.settings.project)

    @cached_property
    def jobs(self) -> JobStore:
        if jobs := self._part("jobs"):
            return jobs  # type: ignore[no-any-return]
        from ..adapters.firestore_job_store import FirestoreJobStore

        return FirestoreJobStore(self.firestore, JOBS_COLLECTION)

    @cached_property
    def engine(self) -> Engine:
        if engine := self._part("engine"):
            return engine  # type: ignore[no-any-return]
        from .inngest_engine import InngestEngine

        return InngestEngine(self.inngest)

    @cached_property
    def service(self) -> JobService:
        if service := self._part("service"):
            return service  # type: ignore[no-any-return]
        from ..budget import SpendLimits
        from ..service import JobService

        s = self.settings
        limits = Limits.of(s.video_model, s.veo_model, s.stitch_backend)
        budget = SpendLimits(s.user_seconds_per_day, s.project_seconds_per_day)
        return JobService(
            self.jobs,
            self.engine,
            limits,
            s.max_active_jobs,
            s.allow_anonymous,
            budget,
            pricing=self.pricing,
            blobs=lambda: self.blobs,
            link=lambda key: self.blobs.signed_url(key, timedelta(minutes=s.playback_url_minutes)),
            model=s.veo_model if s.video_model == "veo" else "preview",
        )

    @cached_property
    def pricing(self) -> Pricing:
        """The deployment's prices; with the preview renderer nothing is billed: an estimate."""
        s = self.settings
        return Pricing(s.prices, s.veo_model, s.stitch_backend, estimated=s.video_model == "preview")

    @cached_property
    def blobs(self) -> BlobStore:
        if blobs := self._part("blobs"):
            return blobs  # type: ignore[no-any-return]
        s = self.settings
        if s.local_dir is not None:
            from ..adapters.local_blob_store import LocalBlobStore

            return LocalBlobStore(s.local_dir)
        from google.cloud import storage

        from ..adapters.gcs_blob_store import GcsBlobStore

        # With STORAGE_EMULATOR_HOST set the client talks to that emulator.
        return GcsBlobStore(storage.Client(project=s.project), self._bucket("segments and videos"))

    @cached_property
    def model(self) -> VideoModel:
        if model := self._part("model"):
            return model  # type: ignore[no-any-return]
        s = self.settings
        if s.video_model == "preview":
            from ..adapters.preview_video_model import PreviewVideoModel

            return PreviewVideoModel(self.blobs)
        from ..adapters.veo_video_model import VeoVideoModel, veo_client

        bucket = self._bucket("Veo writes its videos to Cloud Storage")
        client = veo_client(s.project, s.vertex_location, s.vertex_base_url or None)
        return VeoVideoModel(client, s.veo_model, bucket)

    @cached_property
    def frames(self) -> FrameExtractor:
        if frames := self._part("frames"):
            return frames  # type: ignore[no-any-return]
        from ..adapters.pyav_frames import PyavFrameExtractor

        return PyavFrameExtractor(self.blobs)

    @cached_property
    def stitcher(self) -> Stitcher:
        if stitcher := self._part("stitcher"):
            return stitcher  # type: ignore[no-any-return]
        s = self.settings
        if s.stitch_backend == "ffmpeg":
            from ..adapters.pyav_stitcher import PyavStitcher

            return PyavStitcher(self.blobs)
        from ..adapters.transcoder_stitcher import TranscoderStitcher, transcoder_client

        bucket = self._bucket("the Transcoder reads and writes Cloud Storage")
        client = transcoder_client(s.transcoder_endpoint or None)
        return TranscoderStitcher(client, s.project, s.transcoder_location, bucket, topic=s.transcoder_topic or None)

    @cached_property
    def checker(self) -> MediaChecker:
        if checker := self._part("checker"):
            return checker  # type: ignore[no-any-return]
        from ..adapters.pyav_checker import PyavMediaChecker

        return PyavMediaChecker(self.blobs)

    @cached_property
    def pipeline(self) -> Pipeline:
        if pipeline := self._part("pipeline"):
            return pipeline  # type: ignore[no-any-return]
        from ..workflow import Pipeline

        s = self.settings
        return Pipeline(
            jobs=self.jobs,
            blobs=self.blobs,
            model=self.model,
            frames=self.frames,
            stitcher=self.stitcher,
            checker=self.checker,
            pricing=self.pricing,
            signed_url_hours=s.signed_url_hours,
            poll_seconds=s.poll_seconds,
            poll_budget_seconds=s.poll_budget_seconds,
            poll_floor_seconds=s.poll_floor_seconds,
            max_wait_seconds=s.max_wait_seconds,
        )

    def _bucket(self, why: str) -> str:
        if not self.settings.bucket:
            raise PermanentError(f"{why}: set LONGFORM_BUCKET (or LONGFORM_LOCAL_DIR on the emulators)")
        return self.settings.bucket
