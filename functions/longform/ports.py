"""The small interfaces the workflow talks through. Each has an embedded and a cloud adapter.

Adapters raise TransientError / PermanentError (see errors.py), never vendor exceptions.
Everything that crosses a step boundary is small JSON: keys, URIs, operation names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from .budget import SpendLimits, Usage
from .job import Job

T = TypeVar("T")


class JobStore(Protocol):
    def create(self, job: Job) -> None:
        """Store a new job; raises LongformError if the id exists."""

    def submit(self, job: Job, max_active: int | None = None, limits: SpendLimits | None = None) -> tuple[Job, bool]:
        """Create ``job`` unless a job with its id exists — then return that one unchanged (an
        idempotent retry). Refuse with TooManyActiveJobs when the user already has ``max_active``
        unfinished jobs, and with BudgetExhausted when the job's reservation (``job.budget``)
        does not fit ``limits`` on its day; else add it to the user's and the project's ledger.
        Atomic. Returns the stored job and whether it was created now."""

    def get(self, job_id: str) -> Job:
        """The job, or JobNotFound."""

    def update(self, job_id: str, change: Callable[[Job], None], limits: SpendLimits | None = None) -> Job:
        """Read, apply ``change`` (which may raise to abort), stamp ``updatedAt``, write — atomically, with the seconds
        the change gives back (``budget.returned_by``) taken off the ledger, or, when it takes
        seconds back (a resume), booked again: then within ``limits`` (BudgetExhausted, nothing
        written). Returns the new job."""

    def usage(self, user_id: str, day: str) -> Usage:
        """The ledger entry of ``user_id`` (or ``budget.PROJECT``) for ``day``."""

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs, newest first."""

    def finished_before(self, created_before: str, holding: str = "scenes", limit: int = 100) -> Sequence[Job]:
        """Finished jobs made before ``created_before`` (an ISO time) that still hold their scene
        media (``holding="scenes"``: segments and frames) or their final video (``"video"``),
        oldest first."""

    def delete(self, job_id: str) -> None:
        """Remove the job's document (its ledger entries stay: what was spent was spent)."""

    def stale(self, status: str, updated_before: str, limit: int = 100) -> Sequence[Job]:
        """Jobs in ``status`` whose last write (``updatedAt``) is older than ``updated_before``."""

    def ids_starting_with(self, prefix: str, user_id: str, limit: int = 2) -> Sequence[str]:
        """Ids of the user's jobs that start with ``prefix``, in id order, at most ``limit``."""


class Engine(Protocol):
    """What runs jobs: Inngest in the cloud, the local runner on a laptop."""

    def start(self, job: Job) -> None:
        """Start (or continue) the job's run; raise if it could not be started."""

    def cancel(self, job: Job) -> None:
        """Tell the run that its job was cancelled (it also stops by itself at its next step)."""


class BlobStore(Protocol):
    """Files under string keys such as ``jobs/{jobId}/segments/0.mp4``."""

    def uri(self, key: str) -> str:
        """Where the blob lives, for people and other services (``file://…``, ``gs://…``)."""

    def key_of(self, uri: str) -> str:
        """The key of a URI this store made; PermanentError for any other."""

    def list(self, prefix: str = "") -> list[str]:
        """Keys that start with ``prefix`` (``jobs/{jobId}/``), in name order."""

    def exists(self, key: str) -> bool: ...

    def upload(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` (replacing it), atomically."""

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the blob's bytes for the duration of the ``with`` block."""

    def delete(self, key: str) -> None: ...

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        """A URL anyone holding it may GET until ``expires`` has passed, or None when this store
        cannot make one (a local folder; credentials that cannot sign — the reason is logged)."""


@dataclass(frozen=True)
class SegmentSpec:
    """What the video model is asked to make for one segment."""

    job_id: str
    user_id: str
    index: int
    prompt: str
    seconds: int
    aspect_ratio: str
    resolution: str
    generate_audio: bool
    output_key: str  # where the segment should land, e.g. jobs/{jobId}/segments/3.mp4
    seed: int | None = None
    negative_prompt: str | None = None
    first_frame_key: str | None = None  # PNG of the previous segment's last frame (chaining)


@dataclass(frozen=True)
class Operation:
    """A long-running generation. ``key`` is set once it is done."""

    name: str
    done: bool
    key: str | None = None


class VideoModel(Protocol):
    """A model may also say how soon an operation can possibly be done, as a float attribute
    ``earliest_done_seconds`` (Veo: 30): the workflow does not poll one sooner. A model that does
    not say is polled at once (``Pipeline.floor_seconds``)."""

    def start(self, spec: SegmentSpec) -> str:
        """Start generating; returns the operation name to poll."""

    def poll(self, operation: str) -> Operation:
        """The operation's state; raises PermanentError if it finished without a video."""


class FrameExtractor(Protocol):
    def last_frame(self, video_key: str, image_key: str) -> None:
        """Write the video's last frame as a PNG under ``image_key``."""


@dataclass(frozen=True)
class MediaExpectation:
    """What a segment (or the final video) must be to be accepted."""

    seconds: float  # its length: each scene's segmentSeconds, or their sum for the final video
    width: int
    height: int
    fps: int = 24
    audio: bool = True  # whether an audio stream must be there


class MediaChecker(Protocol):
    """Integrity before acceptance: a segment is stitched, and a video completed, only once it
    passes. Raises BrokenMedia (errors.py) naming the problem — a container that does not parse,
    packets missing for the declared length, another codec, size or frame rate, no audio when asked."""

    def check(self, key: str, expected: MediaExpectation, *, decode_video: bool = True) -> None:
        """``decode_video=False`` skips decoding every video frame (the one costly rule): for the
        stitched video, whose frames are copies of checked segments or the Transcoder's own
        encode; its packets, length and audio are still checked."""


@dataclass(frozen=True)
class StitchSpec:
    """What the stitcher is asked to make: the segments, in order, into one video."""

    job_id: str
    user_id: str
    run_key: str  # Job.run_key: a retried start finds the stitch this run already started
    segment_keys: tuple[str, ...]
    output_key: str  # jobs/{jobId}/final/video.mp4
    width: int
    height: int
    segment_seconds: int
    audio: bool  # whether the segments were asked for with audio


@dataclass(frozen=True)
class StitchJob:
    """A concatenation in progress (or done). ``key`` is set once it is done."""

    name: str
    done: bool
    key: str | None = None


class Stitcher(Protocol):
    def start(self, spec: StitchSpec) -> str:
        """Start concatenating ``spec.segment_keys`` in order into ``spec.output_key``; returns a
        name to poll (a Transcoder job name, say)."""

    def poll(self, name: str) -> StitchJob:
        """The stitch's state; raises PermanentError if it failed."""

    def cancel(self, name: str) -> None:
        """Stop the stitch if it still runs (a cancelled job's Transcoder job, say); a stitch
        that already ended or is unknown is left as it is."""


class Steps(Protocol):
    """Durable steps: each ``run`` executes at most once to success per job and is memoized,
    so a replayed workflow skips finished work. Step ids must be stable and unique per job."""

    def run(self, step_id: str, fn: Callable[[], T]) -> T: ...

    def sleep(self, step_id: str, seconds: float) -> None: ...

    def parallel(self, branches: Sequence[Callable[[], T]]) -> list[T]:
        """Run independent branches (each calling ``run``) possibly at the same time."""


# A job's files by version: an edit's (version 2 on) are files of their own, so the scenes and
# video of every earlier version stay as they were (to play, and to be reused).


def segment_key(job_id: str, index: int, version: int = 1) -> str:
    return f"jobs/{job_id}/segments/{_v(version)}{index}.mp4"


def frame_key(job_id: str, index: int, version: int = 1) -> str:
    return f"jobs/{job_id}/frames/{_v(version)}{index}.png"


def final_key(job_id: str, version: int = 1) -> str:
    return f"jobs/{job_id}/final/video.mp4" if version == 1 else f"jobs/{job_id}/final/v{version}.mp4"


def _v(version: int) -> str:
    return f"v{version}-" if version > 1 else ""


def job_prefix(job_id: str, part: str = "") -> str:
    """Where a job's files are: all of them, or one part (``segments``, ``frames``, ``final``)."""
    return f"jobs/{job_id}/{part}/" if part else f"jobs/{job_id}/"


__all__ = [
    "BlobStore",
    "Engine",
    "FrameExtractor",
    "JobStore",
    "MediaChecker",
    "MediaExpectation",
    "Operation",
    "SegmentSpec",
    "Steps",
    "StitchJob",
    "Stitcher",
    "VideoModel",
    "final_key",
    "frame_key",
    "job_prefix",
    "segment_key",
]
