"""A designed mix of real local jobs, for the figures of ``longform stats`` (and of the BigQuery SQL,
which must give the same numbers over the same jobs).

``make_mix(data_dir)`` runs each job of ``MIX`` to its end, one after another, on the embedded
pipeline (``bootstrap.local``: SQLite, the preview renderer, the PyAV stitcher and media checks)
with a renderer and a stitcher that fail where the design says:

    job           user  scenes           what happens                                      ends
    completed     ana   2 × 4 s, audio   nothing                                           completed
    retried       ana   3 × 4 s, audio   scene 2's first generation ends with an error     completed
                                         that may pass (a second generation); scene 3's
                                         start fails once (its step retried); the stitch
                                         is refused for quota once (a quota hit)
    quota         ben   2 × 6 s, silent  scene 1's start refused for quota twice           completed
    blocked       ben   3 × 4 s, audio   scene 2 blocked by the safety filters             failed, segment-1-poll-0
    stitch-fails  ana   2 × 4 s, audio   the stitch fails                                  failed, stitch-start
    cancelled     ben   3 × 4 s, audio   cancelled while scene 2 is generated              cancelled

Job ids are fixed (each job is asked for with a ``requestId``), so the faults can name their job
before it exists. The timestamps are the real clock's: the workflow stamps them with ``utc_now()``
and takes no clock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from longform import bootstrap
from longform.adapters.preview_video_model import PreviewVideoModel
from longform.adapters.pyav_stitcher import PyavStitcher
from longform.config import Settings
from longform.errors import GenerationFailed, PermanentError, QuotaExceeded, TransientError
from longform.job import Job, idempotent_job_id
from longform.ports import BlobStore, Operation, SegmentSpec, StitchSpec
from longform.service import Caller

JOB_SECONDS = 120  # the longest a job of the mix may take


@dataclass(frozen=True)
class Design:
    name: str
    user: str
    scenes: int
    status: str  # how it must end
    seconds: int = 4
    audio: bool = True

    @property
    def job_id(self) -> str:
        return idempotent_job_id(self.user, self.request_id)

    @property
    def request_id(self) -> str:
        return f"stats-mix-{self.name}"


MIX = (
    Design("completed", "ana", 2, "completed"),
    Design("retried", "ana", 3, "completed"),
    Design("quota", "ben", 2, "completed", seconds=6, audio=False),
    Design("blocked", "ben", 3, "failed"),
    Design("stitch-fails", "ana", 2, "failed"),
    Design("cancelled", "ben", 3, "cancelled"),
)
BY_ID = {design.job_id: design for design in MIX}


def _name(job_id: str) -> str:
    return BY_ID[job_id].name if job_id in BY_ID else ""


class MixModel(PreviewVideoModel):
    """The preview renderer, failing where the design says. ``cancel`` cancels a job (set once the
    service exists: the model is built before it)."""

    def __init__(self, blobs: BlobStore) -> None:
        super().__init__(blobs)
        self.cancel: Callable[[str], None] = lambda job_id: None
        self.calls: Counter[tuple[str, int, str]] = Counter()  # (job, scene, start|poll) → calls
        self.scenes: dict[str, tuple[str, int]] = {}  # operation → (job, scene)
        self._lock = threading.Lock()

    def start(self, spec: SegmentSpec) -> str:
        job, scene = _name(spec.job_id), spec.index + 1
        n = self._count(job, scene, "start")
        if (job, scene) == ("quota", 1) and n <= 2:
            raise QuotaExceeded("429 RESOURCE_EXHAUSTED: quota exceeded (injected)")
        if (job, scene) == ("retried", 3) and n == 1:
            raise TransientError("503 UNAVAILABLE (injected)")
        if (job, scene) == ("cancelled", 2):
            self.cancel(spec.job_id)  # as if its user pressed Cancel while the scene is made
        operation = super().start(spec)
        self.scenes[operation] = (job, scene)
        return operation

    def poll(self, operation: str) -> Operation:
        job, scene = self.scenes.get(operation, ("", 0))
        n = self._count(job, scene, "poll")
        if (job, scene) == ("retried", 2) and n == 1:
            raise GenerationFailed("the service was unavailable (injected)", again=True)
        if (job, scene) == ("blocked", 2):
            raise GenerationFailed("blocked by the safety filters (injected)", again=False)
        return super().poll(operation)

    def _count(self, job: str, scene: int, call: str) -> int:
        with self._lock:
            self.calls[(job, scene, call)] += 1
            return self.calls[(job, scene, call)]


class MixStitcher(PyavStitcher):
    """The PyAV stitcher, refused for quota once for ``retried`` and failing for ``stitch-fails``."""

    def __init__(self, blobs: BlobStore) -> None:
        super().__init__(blobs)
        self.starts: Counter[str] = Counter()

    def start(self, spec: StitchSpec) -> str:
        job = _name(spec.job_id)
        self.starts[job] += 1
        if job == "retried" and self.starts[job] == 1:
            raise QuotaExceeded("429 RESOURCE_EXHAUSTED: quota exceeded (injected)")
        if job == "stitch-fails":
            raise PermanentError("stitching 2 segments failed: the muxer refused them (injected)")
        return super().start(spec)


def make_mix(data_dir: Path) -> dict[str, Job]:
    """Run every job of ``MIX`` in order under ``data_dir``; the jobs as they ended, by name. Each
    job is created after the one before it ended, so their ``createdAt`` follow ``MIX``'s order."""
    model: MixModel | None = None

    def build(blobs: BlobStore) -> MixModel:
        nonlocal model
        model = MixModel(blobs)
        return model

    local = bootstrap.local(Settings(data_dir=data_dir, retry_base_seconds=0.01), model=build)
    assert model is not None
    model.cancel = lambda job_id: local.service.cancel(Caller(BY_ID[job_id].user), {"jobId": job_id})
    # bootstrap.local injects only the model: the runner gets the same pipeline with this stitcher.
    local.runner.pipeline = dataclasses.replace(local.pipeline, stitcher=MixStitcher(local.pipeline.blobs))
    ended: dict[str, Job] = {}
    for design in MIX:
        request = {
            "prompts": [f"{design.name}: scene {i + 1}" for i in range(design.scenes)],
            "segmentSeconds": design.seconds,
            "generateAudio": design.audio,
            "requestId": design.request_id,
        }
        job_id = local.service.trigger(Caller(design.user), request)["jobId"]
        assert job_id == design.job_id
        assert local.engine.finished[job_id].wait(JOB_SECONDS), f"{design.name} did not end"
        ended[design.name] = job = local.pipeline.jobs.get(job_id)
        assert job.status == design.status, (design.name, job.status, job.error)
    return ended
