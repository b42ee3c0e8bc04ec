"""The job record and its rules: statuses, progress, segments. The one place they are enforced.

Statuses move ``queued → generating → stitching → completed``, or to ``failed`` / ``cancelled``
from any status that is not final. Final statuses never change. Progress never goes down and is
100 only when completed; generation fills 0–90, stitching holds 90–99.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeGuard

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .errors import IllegalTransition, JobBusy
from .prices import Cost, usd
from .request import VideoRequest


class Status(StrEnum):
    QUEUED = "queued"
    GENERATING = "generating"
    STITCHING = "stitching"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
_NEXT = {
    Status.QUEUED: {Status.GENERATING},
    Status.GENERATING: {Status.STITCHING},
    Status.STITCHING: {Status.COMPLETED},
}
STOPPED = "not finished: the job failed on another scene"  # a scene left running when its job failed
GENERATION_PROGRESS = 90  # share of the bar for generating segments; stitching has the rest


class SegmentStatus(StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the job was cancelled before this scene was made


def utc_now() -> str:
    """ISO 8601 in UTC with milliseconds: sortable as text, readable in Firestore and the CLI."""
    return iso_time(datetime.now(UTC))


def iso_time(moment: datetime) -> str:
    """``moment`` as the jobs' timings write it (``2026-11-29T04:00:00.000Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds_between(start: str, end: str) -> float:
    """Seconds from one timing to another (both as ``iso_time`` writes them)."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def new_job_id() -> str:
    return uuid.uuid4().hex


_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def is_job_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` can name a job (what a cancel request must carry)."""
    return isinstance(value, str) and _JOB_ID.match(value) is not None


def idempotent_job_id(user_id: str, request_id: str) -> str:
    """The job id for a user's ``requestId``: the same call made twice gets the same job."""
    return hashlib.sha256(f"{user_id}\n{request_id}".encode()).hexdigest()[:32]


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)


class Segment(_Record):
    index: int
    prompt: str
    status: SegmentStatus = SegmentStatus.PENDING
    uri: str | None = None
    attempts: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    error: str | None = None
    billed_generations: int = 0  # generations that produced a video: each is paid for
    cost_usd: float = 0.0  # what they cost
    quota_hits: int = 0  # calls for this scene refused for quota (429, RESOURCE_EXHAUSTED)
    # Set by edits (edits.py): the scene's own seed and negative prompt (None: the request's), what
    # identifies its segment, the identity of the segment its first frame came from (chained), and
    # whether its file was made by an earlier version (reused: not generated, not paid for again).
    seed: int | None = None
    negative_prompt: str | None = None
    identity: str | None = None
    after: str | None = None
    reused: bool = False


class VersionScene(_Record):
    """A scene of an earlier version: what it was, and its file while it is kept."""

    prompt: str
    seed: int | None = None
    negative_prompt: str | None = None
    uri: str | None = None
    identity: str | None = None
    after: str | None = None


class Version(_Record):
    """An earlier version of the job, as it was when an edit replaced it."""

    number: int
    created_at: str
    status: Status
    changes: list[str] = []
    continuity: str | None = None
    edit_request_id: str | None = None
    request: dict[str, Any]
    scenes: list[VersionScene]
    video_uri: str | None = None
    video_url: str | None = None
    cost: Cost | None = None
    timings: dict[str, str] = {}
    error: str | None = None


class Reservation(_Record):
    """The video seconds a job holds in the daily budget (see budget.py)."""

    day: str
    seconds: int
    returned_seconds: int = 0  # given back when the job failed or was cancelled


class Lease(_Record):
    """Who runs the job (a process) and until when, unless renewed: one runner per job."""

    holder: str
    until: str


class Resume(_Record):
    """One resume of a failed job: when, and how it had failed."""

    at: str
    failed_at: str | None = None
    error: str | None = None
    error_step: str | None = None


class Job(_Record):
    job_id: str
    user_id: str
    status: Status = Status.QUEUED
    progress: int = 0
    request: dict[str, Any]
    segments: list[Segment]
    timings: dict[str, str]
    video_uri: str | None = None
    video_url: str | None = None  # a signed https URL for players, when the store can make one
    error: str | None = None
    error_step: str | None = None
    # The running concatenation (a Transcoder job name, say) and the poller's bookkeeping.
    stitch_job: str | None = None
    stitch_poll_attempts: int = 0
    stitch_lease_until: str | None = None
    stitch_error: str | None = None
    stitch_quota_hits: int = 0  # stitch calls refused for quota
    budget: Reservation | None = None
    cost: Cost | None = None  # the estimate when it was asked for, and what it spent (prices.py)
    # Retention: when the scenes' segments and frames, and the final video, were removed.
    scene_media_removed_at: str | None = None
    video_removed_at: str | None = None
    resumes: list[Resume] = []  # each time a failed job was continued in place
    lease: Lease | None = None  # held by the local process that runs the job
    updated_at: str | None = None  # the last write (stores stamp it): how a stuck job is told
    requeues: int = 0  # starts sent again by the sweeper for a job stuck queued
    # Edits: each makes a new version of the job (edits.py); the earlier ones are kept in ``versions``.
    version: int = 1
    changes: list[str] = []  # what this version changed from the one before
    continuity: str | None = None  # the edit's choice at changed joins (keep or regenerate)
    edit_request_id: str | None = None  # the requestId of the edit that made this version
    versions: list[Version] = []

    @classmethod
    def new(cls, request: VideoRequest, user_id: str, job_id: str | None = None, now: str | None = None) -> Job:
        created = now or utc_now()
        return cls(
            job_id=job_id or new_job_id(),
            user_id=user_id,
            request=request.to_json(),
            segments=[Segment(index=i, prompt=p) for i, p in enumerate(request.prompts)],
            timings={"createdAt": created},
            updated_at=created,
        )

    # -- reading ---------------------------------------------------------------------------

    @property
    def video_request(self) -> VideoRequest:
        return VideoRequest.model_validate(self.request)

    @property
    def quota_hits(self) -> int:
        return sum(s.quota_hits for s in self.segments) + self.stitch_quota_hits

    @property
    def made_here(self) -> list[Segment]:
        """The scenes this version generates (not reused from an earlier one)."""
        return [s for s in self.segments if not s.reused]

    @property
    def completed_here(self) -> int:
        """The scenes this version has generated so far."""
        return sum(1 for s in self.made_here if s.status is SegmentStatus.COMPLETED)

    @property
    def generated_seconds(self) -> int:
        """Video the model made for this version of the job: its completed scenes, not reused."""
        return self.completed_here * self.video_request.segment_seconds

    def scene_seed(self, index: int) -> int | None:
        seg = self.segments[index]
        return seg.seed if seg.seed is not None else self.video_request.seed

    def scene_negative_prompt(self, index: int) -> str | None:
        seg = self.segments[index]
        return seg.negative_prompt if seg.negative_prompt is not None else self.video_request.negative_prompt

    def status_message(self) -> str:
        """What a person is shown: the words of the Director view."""
        n = len(self.segments)
        if self.status is Status.QUEUED:
            return "Queued..."
        if self.status is Status.GENERATING:
            n = len(self.made_here)  # an edit makes only some scenes: those are counted
            if n == 0:
                return "Imaginating Scene... every scene reused"
            k = min(self.completed_here + 1, n)
            return f"Imaginating Scene... scene {k} of {n}"
        if self.status is Status.STITCHING:
            return "Stitching Masterpiece..."
        if self.status is Status.COMPLETED:
            return "Completed"
        if self.status is Status.CANCELLED:
            return "Cancelled"
        return f"Failed: {self.error}"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls.model_validate(data)

    # -- changing: every change goes through these ---------------------------------------------

    def move_to(self, status: Status, now: str | None = None) -> None:
        """Change status, or raise IllegalTransition. Moving to the current status is a no-op
        (a replayed step) unless the status is final."""
        if status == self.status and not status.is_final:
            return
        allowed = _NEXT.get(self.status, set()) | (set() if self.status.is_final else {Status.FAILED, Status.CANCELLED})
        if status not in allowed:
            raise IllegalTransition(f"job {self.job_id}: {self.status} → {status} is not allowed")
        self.status = status
        stamp = now or utc_now()
        key = {
            Status.GENERATING: "startedAt",
            Status.STITCHING: "stitchStartedAt",
            Status.COMPLETED: "completedAt",
            Status.FAILED: "failedAt",
            Status.CANCELLED: "cancelledAt",
        }[status]
        self.timings[key] = stamp
        if status is Status.STITCHING:
            self.set_progress(max(self.progress, GENERATION_PROGRESS))
        if status is Status.COMPLETED:
            self.set_progress(100)
        if status is Status.CANCELLED:
            for seg in self.segments:
                if seg.status in (SegmentStatus.PENDING, SegmentStatus.GENERATING):
                    seg.status = SegmentStatus.CANCELLED
        if status in (Status.FAILED, Status.CANCELLED) and self.budget is not None:
            # What was not made is given back to the day's budget (the store applies it to the ledger).
            self.budget.returned_seconds = max(0, self.budget.seconds - self.generated_seconds)

    def resume(self, now: str | None = None) -> None:
        """Continue a failed job in place: the one way out of ``failed``. It runs again from where
        it stopped (scenes made stay made; failed ones are pending again), keeps its progress,
        records the failure in ``resumes``, and takes back the seconds it had returned."""
        if self.status is not Status.FAILED:
            raise IllegalTransition(f"job {self.job_id} is {self.status}: only a failed job can be resumed")
        stamp = now or utc_now()
        failed_at = self.timings.pop("failedAt", None)
        self.resumes.append(Resume(at=stamp, failed_at=failed_at, error=self.error, error_step=self.error_step))
        self.status = Status.GENERATING
        self.timings["resumedAt"] = stamp
        self.error = self.error_step = self.stitch_error = None
        self.stitch_job, self.stitch_poll_attempts, self.stitch_lease_until = None, 0, None
        for seg in self.segments:
            if seg.status in (SegmentStatus.FAILED, SegmentStatus.GENERATING):
                seg.status, seg.error = SegmentStatus.PENDING, None
        if self.budget is not None:
            self.budget.returned_seconds = 0  # the store books them again on the job's day

    @property
    def run_key(self) -> str:
        """Names this run of the job (the first, or the one after the n-th resume, of each
        version): engines key their runs and events on it, so a resumed or edited job gets a run
        of its own."""
        key = f"{self.job_id}-v{self.version}" if self.version > 1 else self.job_id
        return f"{key}-r{len(self.resumes)}" if self.resumes else key

    def new_version(
        self,
        segments: list[Segment],
        request: VideoRequest,
        changes: list[str],
        continuity: str,
        request_id: str | None = None,
        budget: Reservation | None = None,
        cost: Cost | None = None,
        now: str | None = None,
    ) -> None:
        """An edit: the current version is kept in ``versions`` and the job runs again, queued,
        as version n + 1 with ``segments`` (those reused already completed). Only a job that has
        ended may be edited."""
        if not self.status.is_final:
            raise IllegalTransition(f"job {self.job_id} is {self.status}: only a job that has ended can be edited")
        self.versions.append(self._as_version())
        stamp = now or utc_now()
        self.version += 1
        self.request = request.to_json()
        self.segments = segments
        self.changes, self.continuity, self.edit_request_id = changes, continuity, request_id
        self.status, self.progress, self.timings = Status.QUEUED, 0, {"createdAt": stamp}
        self.video_uri = self.video_url = self.error = self.error_step = None
        self.stitch_job, self.stitch_poll_attempts, self.stitch_lease_until = None, 0, None
        self.stitch_error, self.stitch_quota_hits = None, 0
        self.budget, self.cost = budget, cost
        self.resumes, self.lease, self.requeues = [], None, 0
        self.scene_media_removed_at = self.video_removed_at = None

    def _as_version(self) -> Version:
        kept = self.scene_media_removed_at is None

        def scene(i: int, s: Segment) -> VersionScene:
            uri = s.uri if kept and s.status is SegmentStatus.COMPLETED else None
            seed, negative = self.scene_seed(i), self.scene_negative_prompt(i)
            return VersionScene(
                prompt=s.prompt, seed=seed, negative_prompt=negative, uri=uri, identity=s.identity, after=s.after
            )

        return Version(
            number=self.version,
            created_at=self.timings.get("createdAt", ""),
            status=self.status,
            changes=self.changes,
            continuity=self.continuity,
            edit_request_id=self.edit_request_id,
            request=self.request,
            scenes=[scene(i, s) for i, s in enumerate(self.segments)],
            video_uri=self.video_uri,
            video_url=self.video_url,
            cost=self.cost,
            timings=self.timings,
            error=self.error,
        )

    def take_lease(
        self, holder: str, until: str, now: str | None = None, gone: Callable[[str], bool] = lambda holder: False
    ) -> None:
        """Hold (or renew) the job's lease until ``until``; JobBusy while another holder's lease
        runs, unless that holder is known to be ``gone`` (a dead process on this machine)."""
        held = self.lease is not None and self.lease.holder != holder and self.lease.until > (now or utc_now())
        if held and self.lease is not None and not gone(self.lease.holder):
            raise JobBusy(self.job_id, self.lease.holder)
        self.lease = Lease(holder=holder, until=until)

    def release_lease(self, holder: str) -> None:
        if self.lease is not None and self.lease.holder == holder:
            self.lease = None

    def is_interrupted(self, now: str | None = None, gone: Callable[[str], bool] = lambda holder: False) -> bool:
        """Unfinished, and nobody holds its lease (none, run out, or its holder is ``gone``): the
        process that ran it stopped. For engines that hold a lease while they run (the local runner
        renews it every few seconds)."""
        if self.status.is_final:
            return False
        return self.lease is None or self.lease.until <= (now or utc_now()) or gone(self.lease.holder)

    def set_progress(self, progress: int) -> None:
        if not 0 <= progress <= 100:
            raise IllegalTransition(f"progress {progress} is outside 0–100")
        if progress < self.progress:
            raise IllegalTransition(f"progress may not go down ({self.progress} → {progress})")
        if progress == 100 and self.status is not Status.COMPLETED:
            raise IllegalTransition("progress 100 is only for a completed job")
        self.progress = progress

    def start_segment(
        self, index: int, now: str | None = None, billed_usd: float = 0.0, attempt: int | None = None
    ) -> Segment:
        """One more attempt at segment ``index``; ``billed_usd``: what the last one cost, when it
        made a video that was not kept (it failed the media check). ``attempt``: which attempt this
        is (1 for the first): a repeat of one already begun (a retried step) changes nothing, so it
        is counted and billed once. Without it, the attempts go up by one."""
        self._require_running()
        seg = self.segments[index]
        if seg.status is SegmentStatus.COMPLETED:
            raise IllegalTransition(f"segment {index} is already completed")
        if attempt is not None and seg.attempts >= attempt:
            return seg
        self.bill_scene(index, billed_usd)
        seg.status = SegmentStatus.GENERATING
        seg.attempts = attempt if attempt is not None else seg.attempts + 1
        seg.started_at = seg.started_at or now or utc_now()
        seg.error = None
        return seg

    def complete_segment(self, index: int, uri: str, now: str | None = None, billed_usd: float = 0.0) -> None:
        """Scene ``index`` is made (its file at ``uri``); the generation that made it cost ``billed_usd``."""
        self._require_running()
        self.bill_scene(index, billed_usd)
        seg = self.segments[index]
        seg.status = SegmentStatus.COMPLETED
        seg.uri = uri
        seg.completed_at = now or utc_now()
        seg.error = None
        making = len(self.made_here)
        self.set_progress(max(self.progress, GENERATION_PROGRESS * self.completed_here // max(1, making)))

    def discard_segment(self, index: int, reason: str) -> None:
        """A scene made earlier whose file is gone or broken: it is to be made again."""
        self._require_running()
        seg = self.segments[index]
        if seg.status is SegmentStatus.COMPLETED:
            seg.status, seg.uri, seg.completed_at, seg.error = SegmentStatus.PENDING, None, None, reason
            seg.reused = False  # made by this version now

    def fail_segment(self, index: int, reason: str, billed_usd: float = 0.0) -> None:
        """Scene ``index`` failed for good; ``billed_usd``: what its last generation cost, when it
        made a video (one that failed the media check)."""
        self.bill_scene(index, billed_usd)
        seg = self.segments[index]
        if seg.status is not SegmentStatus.COMPLETED:
            seg.status = SegmentStatus.FAILED
            seg.error = reason

    def bill_scene(self, index: int, amount: float) -> None:
        """A generation of scene ``index`` made a video that costs ``amount``: it is paid for."""
        if amount <= 0:
            return
        seg = self.segments[index]
        seg.billed_generations += 1
        seg.cost_usd = usd(seg.cost_usd + amount)
        if self.cost is not None:
            self.cost.add_scene(amount)

    def note_quota_hit(self, index: int | None) -> None:
        """A call for scene ``index`` (None: for the stitch) was refused for quota."""
        if index is None:
            self.stitch_quota_hits += 1
        else:
            self.segments[index].quota_hits += 1

    def note_requeue(self) -> None:
        if self.status is Status.QUEUED:
            self.requeues += 1

    def hand_over_stitch(self) -> None:
        """The stitch poller's turn ends (its budget spent, or it failed): one more round counted,
        the lease free, and the write fires the next poller."""
        self.stitch_poll_attempts += 1
        self.stitch_lease_until = None

    def record_stitch_job(self, name: str) -> None:
        if self.status is not Status.STITCHING:
            raise IllegalTransition(f"job {self.job_id} is {self.status}, not stitching")
        self.stitch_job = name

    def fail_stitch(self, reason: str, step: str = "stitch", now: str | None = None) -> None:
        self.fail(reason, step, now)
        self.stitch_error = reason

    def complete(
        self, video_uri: str, video_url: str | None = None, now: str | None = None, stitch_usd: float = 0.0
    ) -> None:
        """The video is made and checked; its stitch cost ``stitch_usd``."""
        self.video_uri = video_uri
        self.video_url = video_url
        self.move_to(Status.COMPLETED, now)
        if self.cost is not None:
            self.cost.set_stitch(stitch_usd)

    def fail(self, reason: str, step: str | None = None, now: str | None = None) -> None:
        self.move_to(Status.FAILED, now)
        self.error = reason
        self.error_step = step
        for seg in self.segments:  # started, never finished: say so rather than "generating"
            if seg.status is SegmentStatus.GENERATING:
                seg.status, seg.error = SegmentStatus.FAILED, STOPPED

    def remove_scene_media(self, now: str | None = None) -> None:
        """The segments and frames were deleted (retention): the scenes keep their record."""
        self._require_final()
        self.scene_media_removed_at = self.scene_media_removed_at or now or utc_now()
        for version in self.versions:  # every version's are gone: none can be reused
            for scene in version.scenes:
                scene.uri = None

    def remove_video(self, now: str | None = None) -> None:
        """The final video was deleted (retention)."""
        self._require_final()
        self.video_uri = self.video_url = None
        for version in self.versions:
            version.video_uri = version.video_url = None
        self.video_removed_at = self.video_removed_at or now or utc_now()

    def _require_final(self) -> None:
        if not self.status.is_final:
            raise IllegalTransition(f"job {self.job_id} is {self.status}: its media is still in use")

    def _require_running(self) -> None:
        if self.status is not Status.GENERATING:
            raise IllegalTransition(f"job {self.job_id} is {self.status}, not generating")
