"""The workflow, written once against the ports and ``Steps``; the local runner and Inngest drive it.

Every side effect happens inside ``steps.run`` with an id made from data (``segment-3-start``), so
a replay (resume, retry, the next Inngest request) skips what is done and redoes nothing. Step
results are small JSON: keys and operation names, never bytes.

    start ─▶ per segment i: segment-i-start ─▶ segment-i-poll-n ─▶ [segment-i-last-frame]
          ─▶ stitch-begin ─▶ stitch-start ─▶ stitch-record ─▶ stitch-poll-n ─▶ stitch-check
          ─▶ stitch-link ─▶ stitch-complete

A paid call is alone in its step with nothing after it: ``segment-i-start`` counts the attempt on
the job (free and idempotent: the attempt's number is set, not added, and retried in the step) and
then starts the model once, so a retry of the step asks the model again only when its first
answer was lost. Every other call is free and idempotent, and the poll step makes several: it
waits in itself, polls every few seconds (``Pipeline.poll_seconds``) for up to its budget
(``poll_budget_seconds``), and when the operation is done checks the file and records the scene;
a failed free call is retried at the next tick. Out of budget it hands back "not yet", and the
durable loop runs the next poll step (``segment-i-poll-n+1``) at once. No poll comes sooner than
the model could finish (``VideoModel.earliest_done_seconds``: Veo takes 30 s or more). So a scene
costs three steps whatever Veo's time (Inngest allows 1,000 a run), and a finished operation is
noticed within ``poll_seconds``.

Integrity before acceptance: a segment is accepted (recorded by its poll step) only once the media
checker passes it — a container that parses, every packet there for its length, the asked codec,
size, frame rate and audio — and the stitched video only once its packets, length and audio pass
(``stitch-check``).

A scene whose operation ends with a transient error, or whose file fails the check, is generated
again (``segment-i-start-1``, ``segment-i-poll-1-n`` …, at most ``max_generations``); a scene made
by an earlier run of the job (before a resume; the start step says which) is kept when its file is
there and passes the check (``segment-i-reuse``), else it is made again (``segment-i-discard``); a
scene that fails for good records its own reason on the job before its step fails.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from .errors import BrokenMedia, GenerationFailed, JobCancelled, PermanentError, QuotaExceeded, TransientError
from .job import STOPPED, Job, SegmentStatus, Status
from .job_events import log_quota_hit
from .ports import (
    BlobStore,
    FrameExtractor,
    JobStore,
    MediaChecker,
    MediaExpectation,
    SegmentSpec,
    Steps,
    Stitcher,
    StitchSpec,
    VideoModel,
    final_key,
    frame_key,
    segment_key,
)
from .prices import Pricing
from .request import VideoRequest

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Pipeline:
    """The ports one job runs against, and how patiently it polls."""

    jobs: JobStore
    blobs: BlobStore
    model: VideoModel
    frames: FrameExtractor
    stitcher: Stitcher
    checker: MediaChecker
    pricing: Pricing  # what each generation and the stitch cost, recorded on the job as it runs
    signed_url_hours: int = 72  # how long the final video's signed URL lives (at most 7 days)
    max_generations: int = 3  # per scene, when operations end with a transient error
    poll_seconds: float = 5.0  # between polls, inside a poll step
    # How long one poll step waits before it hands back to the durable loop: well under the step's
    # timeout (the Inngest endpoint's is 30 minutes).
    poll_budget_seconds: float = 240.0
    # No poll of a new operation sooner than this; None: the model's own (earliest_done_seconds).
    poll_floor_seconds: float | None = None
    max_wait_seconds: float = 3600.0  # an operation (or a stitch) still running after this fails
    clock: Callable[[], float] = time.monotonic  # a simulated clock and sleep in tests and the bench
    sleep: Callable[[float], None] = time.sleep

    @property
    def max_polls(self) -> int:
        """Poll steps an operation gets: each one that hands back has waited its whole budget."""
        return max(1, math.ceil(self.max_wait_seconds / self.poll_budget_seconds))

    def floor_seconds(self) -> float:
        """How long after its start a new operation is first polled: the model's
        ``earliest_done_seconds`` (a VideoModel that does not say finishes at once), unless set."""
        if self.poll_floor_seconds is not None:
            return self.poll_floor_seconds
        return float(getattr(self.model, "earliest_done_seconds", 0.0))


def run_job(p: Pipeline, steps: Steps, job_id: str) -> None:
    """Generate every segment, then stitch them: the whole job, for a driver that does both."""
    keys = generate_segments(p, steps, job_id)
    stitch = start_stitch(p, steps, job_id, keys)
    wait_for_stitch(p, steps, job_id, stitch)


def generate_segments(p: Pipeline, steps: Steps, job_id: str) -> list[str]:
    """Make every segment; returns their keys in prompt order."""
    run = _Run.of(job_id, steps.run("start", partial(_start, p, job_id)))
    request = run.request
    make = partial(_segment, p, steps, run)
    if not request.chain:
        return steps.parallel([partial(make, i, None) for i in range(len(request.prompts))])
    keys: list[str] = []
    first_frame: str | None = None
    for i in range(len(request.prompts)):
        keys.append(make(i, first_frame))
        if i + 1 < len(request.prompts):
            last_frame = partial(_last_frame, p, job_id, i, keys[i], run.version)
            first_frame = steps.run(f"segment-{i}-last-frame", last_frame)
    return keys


@dataclass(frozen=True)
class _Run:
    """What the start step found, as every scene of the run reads it."""

    job_id: str
    user_id: str
    request: VideoRequest
    made: dict[str, str]  # scenes made before this run (their keys), by index
    attempts: dict[str, int]  # each scene's attempts before this run, by index
    scenes: list[dict[str, Any]]  # each scene's own seed and negative prompt (an edit's)
    version: int  # the job's version, which names its files

    @classmethod
    def of(cls, job_id: str, started: dict[str, Any]) -> _Run:
        request = VideoRequest.model_validate(started["request"])
        return cls(
            job_id,
            started["userId"],
            request,
            started.get("made") or {},
            started.get("attempts") or {},
            # A start step memoized before there were edits has neither: the request's, 1.
            started.get("scenes") or [{} for _ in request.prompts],
            started.get("version", 1),
        )


def start_stitch(p: Pipeline, steps: Steps, job_id: str, keys: list[str]) -> str:
    """Mark the job stitching and start the concatenation; returns the stitch's name. Three
    steps, one fallible call each, so a retry redoes only the call that failed."""
    spec: dict[str, Any] = steps.run("stitch-begin", partial(_begin_stitch, p, job_id, keys))
    name: str = steps.run("stitch-start", partial(_stitch, p, spec))
    steps.run("stitch-record", partial(_record_stitch, p, job_id, name))
    return name


def wait_for_stitch(p: Pipeline, steps: Steps, job_id: str, name: str) -> None:
    """Poll the stitch to its end and complete the job (the in-process path; the cloud path has a
    poller). Each ``stitch-poll-n`` step polls every ``poll_seconds`` within its budget."""
    for n in range(p.max_polls):
        key: str | None = steps.run(f"stitch-poll-{n}", partial(_await_stitch, p, job_id, name, n == 0))
        if key is not None:
            steps.run("stitch-check", partial(_check_video, p, job_id, key))
            url: str | None = steps.run(
                "stitch-link", partial(p.blobs.signed_url, key, timedelta(hours=p.signed_url_hours))
            )
            steps.run("stitch-complete", partial(_complete, p, job_id, key, url))
            return
    raise PermanentError(f"the stitch {name} did not finish within {_duration(p.max_wait_seconds)}")


def fail_job(jobs: JobStore, job_id: str, reason: str, step_id: str | None) -> Job:
    """Mark the job failed with the reason and the failing step; what was made is kept.
    A job that already ended (cancelled, say) keeps its status."""

    def change(job: Job) -> None:
        if job.status.is_final:
            return
        match = re.match(r"segment-(\d+)-", step_id or "")
        if match:
            job.fail_segment(int(match.group(1)), reason)
        if (step_id or "").startswith("stitch"):
            job.fail_stitch(reason, step_id or "stitch")
        else:
            job.fail(_every_scene(job, reason), step_id)

    return jobs.update(job_id, change)


def _every_scene(job: Job, reason: str) -> str:
    """The job's reason: this one, or every failed scene's when several failed (unchained scenes
    run at once, and each records its own failure)."""
    failed = [s for s in job.segments if s.status is SegmentStatus.FAILED and s.error and s.error != STOPPED]
    if len(failed) < 2:
        return reason
    named = [
        e if e.startswith(f"scene {s.index + 1}:") else f"scene {s.index + 1}: {e}" for s in failed if (e := s.error)
    ]
    return f"{len(failed)} scenes failed: " + "; ".join(named)


# -- step bodies: the side effects ---------------------------------------------------------------


def _start(p: Pipeline, job_id: str) -> dict[str, Any]:
    job = p.jobs.update(job_id, _alive(_running))
    made = {str(s.index): p.blobs.key_of(s.uri) for s in job.segments if s.status is SegmentStatus.COMPLETED and s.uri}
    # Each scene's attempts before this run: a generation's start sets the scene's to one more than
    # these plus the generations before it in this run, so a retried start counts it once.
    attempts = {str(s.index): s.attempts for s in job.segments if s.attempts}
    scenes = [
        {"seed": job.scene_seed(i), "negativePrompt": job.scene_negative_prompt(i)} for i in range(len(job.segments))
    ]
    return {
        "request": job.request,
        "userId": job.user_id,
        "made": made,
        "attempts": attempts,
        "scenes": scenes,
        "version": job.version,
    }


def _running(job: Job) -> None:
    # A failed job reaches here when its failed run is replayed (Inngest's dashboard): it resumes
    # in place, as the resume use case would do it.
    if job.status is Status.FAILED:
        job.resume()
    else:
        job.move_to(Status.GENERATING)


def _segment(p: Pipeline, steps: Steps, run: _Run, index: int, first_frame: str | None) -> str:
    job_id, request, scene = run.job_id, run.request, run.scenes[index]
    spec = SegmentSpec(
        job_id=job_id,
        user_id=run.user_id,
        index=index,
        prompt=request.prompts[index],
        seconds=request.segment_seconds,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        generate_audio=request.generate_audio,
        output_key=segment_key(job_id, index, run.version),
        seed=scene.get("seed", request.seed),
        negative_prompt=scene.get("negativePrompt", request.negative_prompt) or None,
        first_frame_key=first_frame,
    )
    expected = expected_media(request)
    # Made by an earlier run of this job (before a resume, or a replay): kept if its file is there
    # and whole, else made again.
    earlier = run.made.get(str(index))
    if earlier:
        wrong: str | None = steps.run(f"segment-{index}-reuse", partial(_problem, p, earlier, expected))
        if wrong is None:
            return earlier
        steps.run(f"segment-{index}-discard", partial(_discard_segment, p, job_id, index, wrong))
    why = ""
    broken = False  # the last generation made a video that failed the check: it is paid for
    before = run.attempts.get(str(index), 0)
    for generation in range(p.max_generations):
        # The first generation's step ids are the plain ones; a new generation (after an operation
        # that ended with a transient error, or a broken file) gets ids of its own:
        # segment-3-start-1, segment-3-poll-1-0, …
        g = f"-{generation}" if generation else ""
        attempt = before + generation + 1
        started: str | dict[str, str] = steps.run(
            f"segment-{index}-start{g}", partial(_start_generation, p, spec, attempt, broken)
        )
        operation = started["operation"] if isinstance(started, dict) else started
        last = generation + 1 == p.max_generations
        for n in range(p.max_polls):
            polled: str | dict[str, Any] | None = steps.run(
                f"segment-{index}-poll{g}-{n}",
                partial(_await_segment, p, job_id, index, operation, expected, last, n == 0),
            )
            if polled is None or isinstance(polled, str):
                # Still running at the end of that step's budget: poll again. (A key alone is a poll
                # of a run begun before polls checked and recorded the scene: the next one does.)
                continue
            if "key" in polled:
                key: str = polled["key"]
                return key
            # {"again": reason, "broken": …}: the operation failed for a reason that may pass, or
            # made a file that failed the check: a new generation
            why, broken = polled["again"], bool(polled.get("broken"))
            break
        else:
            raise PermanentError(f"scene {index + 1}: the model did not finish within {_duration(p.max_wait_seconds)}")
    raise AssertionError(f"scene {index + 1}: the last generation's poll returned {why!r}")  # it raises


def _start_generation(p: Pipeline, spec: SegmentSpec, attempt: int, last_was_broken: bool) -> dict[str, str]:
    """Count the attempt on the job, then start the model — once: if it fails, the step fails
    and its retry starts it again (and counts nothing twice)."""
    _free(p, partial(_begin_segment, p, spec.job_id, spec.index, attempt, last_was_broken))
    return _start_segment(p, spec)


def _begin_segment(p: Pipeline, job_id: str, index: int, attempt: int, last_was_broken: bool = False) -> None:
    # The attempt is counted before the model is asked; a last generation whose video failed the
    # check is paid for here, with it. Both once: a repeat of this attempt's write changes nothing.
    def begin(j: Job) -> None:
        billed = p.pricing.scene_usd(j.video_request) if last_was_broken else 0.0
        j.start_segment(index, billed_usd=billed, attempt=attempt)

    p.jobs.update(job_id, _alive(begin))


def _start_segment(p: Pipeline, spec: SegmentSpec) -> dict[str, str]:
    try:
        return {"operation": counting_quota(p.jobs, spec.job_id, spec.index, lambda: p.model.start(spec))}
    except PermanentError as exc:
        raise _scene_failed(p, spec.job_id, spec.index, exc, named=False) from exc


def _scene_failed(
    p: Pipeline, job_id: str, index: int, exc: Exception, named: bool = True, made_a_video: bool = False
) -> PermanentError:
    """Record on the job that this scene failed for good, with its reason, before the step fails:
    when unchained scenes fail at once, each keeps its own reason. ``made_a_video``: its last
    generation made one (that failed the check), which is paid for. Returns the error to raise."""
    reason = f"scene {index + 1}: {exc}" if named else str(exc)

    def fail(j: Job) -> None:
        if not j.status.is_final:
            j.fail_segment(index, reason, p.pricing.scene_usd(j.video_request) if made_a_video else 0.0)

    try:
        p.jobs.update(job_id, fail)
    except Exception as write:  # the engine's failure handler records it too
        log.warning("scene %d's failure not recorded: %s", index + 1, write)
    return PermanentError(reason)


def _await_segment(
    p: Pipeline, job_id: str, index: int, operation: str, expected: MediaExpectation, last: bool, first: bool
) -> dict[str, Any] | None:
    """One poll step of a scene: poll within the budget (the ``first`` of a generation no sooner
    than the model could be done); once the operation is done, check its file and record the scene.
    Returns ``{"key": key}`` once the scene is made and recorded; None when the operation still
    runs at the end of the budget; ``{"again": reason, "broken": bool}`` when a new generation is
    to be made: the operation ended with an error a new one may not meet, or its file failed the
    check (``broken``: that video is paid for). On the ``last`` generation allowed, those fail the
    scene instead."""
    done = _SceneProgress()

    def tick() -> dict[str, Any] | None:
        if done.key is None:
            polled = _poll_segment(p, job_id, index, operation, last)
            if not isinstance(polled, str):
                return polled  # None: it still runs; {"again": reason}: a new generation
            done.key = polled
        if not done.checked:
            problem = _check_segment(p, job_id, index, done.key, expected, last)
            if problem is not None:
                return {"again": problem, "broken": True}
            done.checked = True
        _complete_segment(p, job_id, index, done.key)
        return {"key": done.key}

    # The first poll of a generation comes no sooner than the model could be done; a later step's
    # first poll comes a tick after the last one of the step before (which just handed back).
    return _within_budget(p, p.floor_seconds() if first else p.poll_seconds, tick)


@dataclass
class _SceneProgress:
    """How far one poll step got, so a tick after a failed call goes on from there."""

    key: str | None = None  # the video's key, once the operation is done
    checked: bool = False  # the file passed the check


def _poll_segment(
    p: Pipeline, job_id: str, index: int, operation: str, last: bool = True
) -> str | dict[str, str] | None:
    """The scene's key once made; None while the model works; ``{"again": reason}`` when the
    operation ended with an error a new generation may not meet (the segment loop starts one),
    unless this is the ``last`` generation allowed: then the scene fails."""
    try:
        op = counting_quota(p.jobs, job_id, index, lambda: p.model.poll(operation))
    except GenerationFailed as exc:
        if exc.again and not last:
            return {"again": str(exc)}
        if exc.again:
            exc = GenerationFailed(f"{p.max_generations} generations failed, the last: {exc}", again=False)
        raise _scene_failed(p, job_id, index, exc) from exc
    except PermanentError as exc:  # e.g. blocked by the safety filters: say which scene
        raise _scene_failed(p, job_id, index, exc) from exc
    if not op.done or op.key is None:
        return None
    return op.key


def _within_budget(p: Pipeline, floor: float, tick: Callable[[], T | None]) -> T | None:
    """Call ``tick`` — first ``floor`` seconds from now, then every ``poll_seconds`` — until it
    answers (anything but None), or until the next tick would come after ``poll_budget_seconds``
    from now: then None, and the durable loop runs the next poll step. A TransientError of a tick is a missed
    tick, tried again at the next one (a poll, a check and a record are free and idempotent); a
    step whose every tick missed fails with the last error, for the engine to retry with backoff."""
    began = p.clock()
    deadline = began + p.poll_budget_seconds
    at = began + min(floor, p.poll_budget_seconds)
    missed: TransientError | None = None
    answered = False
    while True:
        _sleep_until(p, at)
        wait_at_least = 0.0
        try:
            result = tick()
        except TransientError as exc:
            log.warning("missed a tick, trying again in %.0f s: %s", max(p.poll_seconds, exc.retry_after or 0), exc)
            missed, wait_at_least = exc, exc.retry_after or 0.0
        else:
            if result is not None:
                return result
            answered = True
        at = max(at + p.poll_seconds, p.clock() + wait_at_least)
        if at > deadline:
            if missed is not None and not answered:
                raise missed
            return None


def _sleep_until(p: Pipeline, at: float) -> None:
    delay = at - p.clock()
    if delay > 0:
        p.sleep(delay)


def _free(p: Pipeline, call: Callable[[], T], tries: int = 3, pause: float = 1.0) -> T:
    """A free, idempotent call (a job write), tried again in the step when it fails transiently:
    a step that also makes a paid call is then retried, and that call repeated, less often."""
    for attempt in range(1, tries + 1):
        try:
            return call()
        except TransientError as exc:
            if attempt == tries:
                raise
            log.warning("a write failed, trying again: %s", exc)
            p.sleep(max(pause * attempt, exc.retry_after or 0.0))
    raise AssertionError("unreachable")  # the loop returns or raises


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} s"


def expected_media(request: VideoRequest, scenes: int = 1) -> MediaExpectation:
    """What a segment of ``request`` must be (or, with ``scenes``, the video of that many)."""
    width, height = request.frame_size
    return MediaExpectation(request.segment_seconds * scenes, width, height, audio=request.generate_audio)


def expected_video(job: Job) -> MediaExpectation:
    """What the job's stitched video must be: every scene, end to end."""
    return expected_media(job.video_request, scenes=len(job.segments))


def _problem(p: Pipeline, key: str, expected: MediaExpectation) -> str | None:
    """What is wrong with the file, or None when it passes the check."""
    try:
        p.checker.check(key, expected)
    except BrokenMedia as exc:
        return str(exc)
    return None


def _check_segment(
    p: Pipeline, job_id: str, index: int, key: str, expected: MediaExpectation, last: bool
) -> str | None:
    """None when the scene's file passes the check; what is wrong with it when a new generation
    may still be made; the scene fails when this was the ``last`` generation allowed."""
    problem = _problem(p, key, expected)
    if problem is None:
        return None
    log.warning("scene %d: its file failed the check: %s", index + 1, problem)
    if not last:
        return problem
    reason = f"{p.max_generations} generations failed, the last made a broken file: {problem}"
    raise _scene_failed(p, job_id, index, BrokenMedia(reason), made_a_video=True)


def _discard_segment(p: Pipeline, job_id: str, index: int, problem: str) -> None:
    log.warning("scene %d made earlier is not kept: %s", index + 1, problem)
    p.jobs.update(job_id, _alive(lambda j: j.discard_segment(index, problem)))


def _check_video(p: Pipeline, job_id: str, key: str) -> None:
    # Its frames are copies of checked segments (or the Transcoder's encode): no frame decoding.
    p.checker.check(key, expected_video(p.jobs.get(job_id)), decode_video=False)


def _complete_segment(p: Pipeline, job_id: str, index: int, key: str) -> None:
    uri = p.blobs.uri(key)

    def complete(j: Job) -> None:
        if not _made(j, index, uri):  # a replayed step after the write went through
            j.complete_segment(index, uri, billed_usd=p.pricing.scene_usd(j.video_request))

    p.jobs.update(job_id, _alive(complete))


def _made(job: Job, index: int, uri: str) -> bool:
    scene = job.segments[index]
    return scene.status is SegmentStatus.COMPLETED and scene.uri == uri


def _last_frame(p: Pipeline, job_id: str, index: int, video_key: str, version: int) -> str:
    key = frame_key(job_id, index, version)
    p.frames.last_frame(video_key, key)
    return key


def _begin_stitch(p: Pipeline, job_id: str, keys: list[str]) -> dict[str, Any]:
    job = p.jobs.update(job_id, _alive(lambda j: j.move_to(Status.STITCHING)))
    request = job.video_request
    width, height = request.frame_size
    spec = StitchSpec(
        job_id=job_id,
        user_id=job.user_id,
        run_key=job.run_key,
        segment_keys=tuple(keys),
        output_key=final_key(job_id, job.version),
        width=width,
        height=height,
        segment_seconds=request.segment_seconds,
        audio=request.generate_audio,
    )
    return asdict(spec)  # a step's result is JSON


def _stitch(p: Pipeline, spec: dict[str, Any]) -> str:
    stitch = StitchSpec(**{**spec, "segment_keys": tuple(spec["segment_keys"])})
    return counting_quota(p.jobs, stitch.job_id, None, lambda: p.stitcher.start(stitch))


def _record_stitch(p: Pipeline, job_id: str, name: str) -> None:
    try:
        p.jobs.update(job_id, _alive(lambda j: j.record_stitch_job(name) if j.stitch_job != name else None))
    except JobCancelled:
        p.stitcher.cancel(name)  # cancelled while it started: only this run knows its name
        raise


def _poll_stitch(p: Pipeline, job_id: str, name: str) -> str | None:
    result = counting_quota(p.jobs, job_id, None, lambda: p.stitcher.poll(name))
    return result.key if result.done else None


def _await_stitch(p: Pipeline, job_id: str, name: str, first: bool) -> str | None:
    """One poll step of the stitch: the final video's key, or None at the end of the budget. The
    first polls at once (the in-function stitch is done when it starts)."""
    return _within_budget(p, 0.0 if first else p.poll_seconds, partial(_poll_stitch, p, job_id, name))


def _complete(p: Pipeline, job_id: str, key: str, url: str | None) -> None:
    uri = p.blobs.uri(key)

    def complete(job: Job) -> None:
        if job.status is not Status.COMPLETED:  # a replayed step after the write went through
            job.complete(uri, url, stitch_usd=stitch_cost(p.pricing, job))

    p.jobs.update(job_id, _alive(complete))


def stitch_cost(pricing: Pricing, job: Job) -> float:
    """The job's stitch, ending now: for the in-function stitch, the function's time since the
    stitch began."""
    began = job.timings.get("stitchStartedAt")
    seconds = (datetime.now(UTC) - datetime.fromisoformat(began)).total_seconds() if began else None
    return pricing.stitch_usd(job.video_request, len(job.segments), seconds)


def counting_quota(jobs: JobStore, job_id: str, index: int | None, call: Callable[[], T]) -> T:
    """``call()``; a refusal for quota is counted on the job (scene ``index``, or None for the
    stitch) and logged, then raised for the step to retry."""
    try:
        return call()
    except QuotaExceeded as exc:
        log_quota_hit(exc, None if index is None else index + 1)
        try:
            jobs.update(job_id, lambda j: j.note_quota_hit(index))
        except Exception as write:  # the count is lost, the retry is not
            log.warning("quota hit not counted: %s", write)
        raise


def _alive(change: Callable[[Job], object]) -> Callable[[Job], None]:
    """Apply ``change`` unless the job was cancelled meanwhile: then stop the run instead."""

    def guarded(job: Job) -> None:
        if job.status is Status.CANCELLED:
            raise JobCancelled(job.job_id)
        change(job)

    return guarded
