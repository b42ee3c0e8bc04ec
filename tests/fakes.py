"""Fakes that satisfy the ports, keep their state in memory and record what happened."""

from __future__ import annotations

import copy
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from longform.budget import PROJECT, SpendLimits, Usage, admit, admit_taken_back, ledger_change
from longform.errors import BrokenMedia, JobNotFound, LongformError, PermanentError, TooManyActiveJobs, TransientError
from longform.job import Job, Status, utc_now
from longform.job_events import log_events
from longform.ports import MediaExpectation, Operation, SegmentSpec, StitchJob, StitchSpec


class InMemoryJobStore:
    def __init__(self, clock: Callable[[], str] = utc_now) -> None:
        self.clock = clock  # what stamps ``updatedAt``: a test's clock, so that staleness follows it
        self.jobs: dict[str, Job] = {}
        self.ledger: dict[tuple[str, str], Usage] = {}  # (owner, day) → usage
        self._lock = threading.Lock()

    def create(self, job: Job) -> None:
        with self._lock:
            if job.job_id in self.jobs:
                raise LongformError(f"job {job.job_id!r} already exists")
            self.jobs[job.job_id] = copy.deepcopy(job)

    def submit(self, job: Job, max_active: int | None = None, limits: SpendLimits | None = None) -> tuple[Job, bool]:
        with self._lock:
            if job.job_id in self.jobs:
                return copy.deepcopy(self.jobs[job.job_id]), False
            active = sum(1 for j in self.jobs.values() if j.user_id == job.user_id and not j.status.is_final)
            if max_active is not None and active >= max_active:
                raise TooManyActiveJobs(job.user_id, max_active)
            if job.budget is not None:
                day, seconds = job.budget.day, job.budget.seconds
                if limits is not None:
                    admit(limits, seconds, self._entry(job.user_id, day), self._entry(PROJECT, day))
                for owner in (job.user_id, PROJECT):
                    entry = self._entry(owner, day)
                    entry.seconds += seconds
                    entry.jobs += 1
                if limits is not None:
                    self._entry(job.user_id, day).limit_seconds = limits.user_seconds
            self.jobs[job.job_id] = copy.deepcopy(job)
            return copy.deepcopy(job), True

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self.jobs:
                raise JobNotFound(job_id)
            return copy.deepcopy(self.jobs[job_id])

    def update(self, job_id: str, change: Callable[[Job], None], limits: SpendLimits | None = None) -> Job:
        with self._lock:
            if job_id not in self.jobs:
                raise JobNotFound(job_id)
            before = self.jobs[job_id]
            job = copy.deepcopy(before)
            change(job)
            if job != before:
                job.updated_at = self.clock()
            if job.budget is not None:
                user, project = self._entry(job.user_id, job.budget.day), self._entry(PROJECT, job.budget.day)
                admit_taken_back(limits, before, job, user, project)
            booked = ledger_change(before, job)
            if booked and job.budget is not None:
                for owner in (job.user_id, PROJECT):
                    entry = self._entry(owner, job.budget.day)
                    for name, amount in booked.items():
                        setattr(entry, name, round(getattr(entry, name) + amount, 6))
            self.jobs[job_id] = job
        log_events(before, job)
        return copy.deepcopy(job)

    def usage(self, user_id: str, day: str) -> Usage:
        with self._lock:
            return self._entry(user_id, day).model_copy()

    def _entry(self, owner: str, day: str) -> Usage:
        return self.ledger.setdefault((owner, day), Usage(day=day))

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Job]:
        with self._lock:
            jobs = [j for j in self.jobs.values() if user_id is None or j.user_id == user_id]
        jobs.sort(key=lambda j: j.job_id)  # ties by id ascending, as the SQLite store orders them
        jobs.sort(key=lambda j: j.timings["createdAt"], reverse=True)  # stable: newest first
        return [copy.deepcopy(j) for j in jobs[:limit]]

    def ids_starting_with(self, prefix: str, user_id: str, limit: int = 2) -> Sequence[str]:
        with self._lock:
            ids = sorted(i for i, j in self.jobs.items() if j.user_id == user_id and i.startswith(prefix))
        return ids[:limit]

    def finished_before(self, created_before: str, holding: str = "scenes", limit: int = 100) -> Sequence[Job]:
        def holds(job: Job) -> bool:
            if holding == "video":
                return job.status is Status.COMPLETED and job.video_removed_at is None
            return job.status.is_final and job.scene_media_removed_at is None

        with self._lock:
            found = [j for j in self.jobs.values() if holds(j) and j.timings["createdAt"] < created_before]
        found.sort(key=lambda j: (j.timings["createdAt"], j.job_id))
        return [copy.deepcopy(j) for j in found[:limit]]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self.jobs.pop(job_id, None)

    def stale(self, status: str, updated_before: str, limit: int = 100) -> Sequence[Job]:
        with self._lock:
            found = [
                j
                for j in self.jobs.values()
                if j.status == status and (j.updated_at or j.timings["createdAt"]) < updated_before
            ]
        found.sort(key=lambda j: (j.timings["createdAt"], j.job_id))
        return [copy.deepcopy(j) for j in found[:limit]]


class InMemoryBlobStore:
    def __init__(self, can_sign: bool = True) -> None:
        self.blobs: dict[str, bytes] = {}
        self.can_sign = can_sign

    def uri(self, key: str) -> str:
        return f"mem://{key}"

    def key_of(self, uri: str) -> str:
        if not uri.startswith("mem://"):
            raise PermanentError(f"{uri!r} is not a blob here")
        return uri.removeprefix("mem://")

    def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.blobs if k.startswith(prefix))

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def upload(self, key: str, path: Path) -> None:
        self.blobs[key] = Path(path).read_bytes()

    def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        if key not in self.blobs:
            raise PermanentError(f"no blob {key!r}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(key).name
            path.write_bytes(self.blobs[key])
            yield path

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        return f"https://signed.example/{key}?expires={int(expires.total_seconds())}" if self.can_sign else None


class SimClock:
    """A simulated clock: ``sleep`` moves it on at once and is recorded. Shared by threads."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


class FakeVideoModel:
    """Writes ``video:<prompt>`` as the segment. ``failures[index]`` is a list of exceptions raised
    by successive starts of that segment; ``polls_until_done`` polls return not-done first."""

    def __init__(
        self,
        blobs: InMemoryBlobStore,
        failures: dict[int, list[Exception]] | None = None,
        polls_until_done: int = 0,
        seconds: float = 0.0,
        on_start: Callable[[SegmentSpec], None] | None = None,
        ended_with: dict[int, list[Exception]] | None = None,
        broken: dict[int, int] | None = None,
        clock: SimClock | None = None,
        latency: float = 0.0,
        earliest_done_seconds: float = 0.0,
    ) -> None:
        """``ended_with[index]``: errors the successive operations of that scene end with (raised
        by their polls, as a finished operation with an error is). ``broken[index]``: how many of
        that scene's first generations write a broken file (FakeMediaChecker refuses it). With a
        ``clock``, an operation is also not done until ``latency`` seconds after its start, and
        each poll's time is kept in ``polled_at``."""
        self.blobs = blobs
        self.clock = clock
        self.latency = latency
        self.earliest_done_seconds = earliest_done_seconds
        self.started_at: dict[str, float] = {}
        self.polled_at: dict[str, list[float]] = {}
        self.failures = {i: list(errs) for i, errs in (failures or {}).items()}
        self.ended_with = {i: list(errs) for i, errs in (ended_with or {}).items()}
        self._operation_errors: dict[str, Exception] = {}
        self.broken = dict(broken or {})
        self.polls_until_done = polls_until_done
        self.seconds = seconds
        self.on_start = on_start
        self.started: list[SegmentSpec] = []
        self.polls: dict[str, int] = {}
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def start(self, spec: SegmentSpec) -> str:
        with self._lock:
            self.started.append(spec)
            pending = self.failures.get(spec.index)
            error = pending.pop(0) if pending else None
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            if self.on_start:
                self.on_start(spec)
            if error:
                raise error
            time.sleep(self.seconds)
            with self._lock:
                broken = self.broken.get(spec.index, 0) > 0
                self.broken[spec.index] = self.broken.get(spec.index, 0) - 1
            self.blobs.put(spec.output_key, (BROKEN if broken else b"") + f"video:{spec.prompt}".encode())
        finally:
            with self._lock:
                self.running -= 1
        name = f"op/{spec.output_key}#{len(self.started)}"
        self.polls[name] = 0
        if self.clock is not None:
            self.started_at[name] = self.clock()
            self.polled_at[name] = []
        with self._lock:
            pending_end = self.ended_with.get(spec.index)
            if pending_end:
                self._operation_errors[name] = pending_end.pop(0)
        return name

    def poll(self, operation: str) -> Operation:
        self.polls[operation] += 1
        if self.clock is not None:
            self.polled_at[operation].append(self.clock() - self.started_at[operation])
        if operation in self._operation_errors:
            raise self._operation_errors[operation]
        if self.polls[operation] <= self.polls_until_done:
            return Operation(operation, done=False)
        if self.clock is not None and self.clock() < self.started_at[operation] + self.latency:
            return Operation(operation, done=False)
        return Operation(operation, done=True, key=operation.removeprefix("op/").split("#")[0])

    def started_indexes(self) -> list[int]:
        return [s.index for s in self.started]


BROKEN = b"broken:"  # what a broken file starts with, for FakeMediaChecker


class FakeMediaChecker:
    """Refuses a missing file and one that starts with ``BROKEN``; records every check."""

    def __init__(self, blobs: InMemoryBlobStore) -> None:
        self.blobs = blobs
        self.checked: list[tuple[str, MediaExpectation, bool]] = []

    def check(self, key: str, expected: MediaExpectation, *, decode_video: bool = True) -> None:
        self.checked.append((key, expected, decode_video))
        if key not in self.blobs.blobs:
            raise BrokenMedia(f"{key}: the file is missing")
        if self.blobs.blobs[key].startswith(BROKEN):
            raise BrokenMedia(f"{key}: the video is corrupt at 2.5 s")


class FakeFrameExtractor:
    def __init__(self, blobs: InMemoryBlobStore) -> None:
        self.blobs = blobs
        self.calls: list[tuple[str, str]] = []

    def last_frame(self, video_key: str, image_key: str) -> None:
        self.calls.append((video_key, image_key))
        self.blobs.put(image_key, b"frame-of:" + self.blobs.blobs[video_key])


class FakeStitcher:
    def __init__(self, blobs: InMemoryBlobStore, error: Exception | None = None) -> None:
        self.blobs = blobs
        self.error = error
        self.calls: list[tuple[str, list[str], str]] = []
        self.specs: list[StitchSpec] = []
        self.cancelled: list[str] = []

    def start(self, spec: StitchSpec) -> str:
        self.calls.append((spec.job_id, list(spec.segment_keys), spec.output_key))
        self.specs.append(spec)
        if self.error:
            raise self.error
        self.blobs.put(spec.output_key, b"|".join(self.blobs.blobs[k] for k in spec.segment_keys))
        return f"stitch/{spec.output_key}"

    def poll(self, name: str) -> StitchJob:
        return StitchJob(name, done=True, key=name.removeprefix("stitch/"))

    def cancel(self, name: str) -> None:
        self.cancelled.append(name)


def transient(message: str = "503 Service Unavailable") -> TransientError:
    return TransientError(message)
