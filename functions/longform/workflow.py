"""The workflow, written once against the ports and ``Steps``; the local runner and Inngest drive it.

Every side effect happens inside ``steps.run`` with an id made from data (``segment-3-start``), so
a replay (resume, retry, the next Inngest request) skips what is done and redoes nothing. Step
results are small JSON: keys and operation names, never bytes.

    start ─▶ per segment i: segment-i-begin ─▶ segment-i-start ─▶ segment-i-poll-n (sleep between)
                            ─▶ segment-i-check ─▶ segment-i-done ─▶ [segment-i-last-frame]
          ─▶ stitch-begin ─▶ stitch-start ─▶ stitch-record ─▶ stitch-poll-n ─▶ stitch-check
          ─▶ stitch-link ─▶ stitch-complete

Each step makes one fallible call (a store write, a model call, a file), so a retry redoes only
the call that failed.

Integrity before acceptance: a segment is accepted (``done``) only once the media checker passes
it — a container that parses, every packet there for its length, the asked codec, size, frame rate
and audio — and the stitched video only once its packets, length and audio pass (``stitch-check``).

A scene whose operation ends with a transient error, or whose file fails the check, is generated
again (``segment-i-begin-1``, ``segment-i-start-1``, ``segment-i-poll-1-n`` …, at most
``max_generations``); a scene made by an earlier run of the job (before a resume; the start step
says which) is kept when its file is there and passes the check (``segment-i-reuse``), else it is
made again (``segment-i-discard``); a scene that fails for good records its own reason on the job
before its step fails.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from .errors import BrokenMedia, GenerationFailed, JobCancelled, PermanentError, QuotaExceeded
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
    poll_seconds: float = 10.0  # the first wait between polls; it grows by half each time
    max_poll_seconds: float = 60.0
    max_polls: int = 60

    def wait_before_poll(self, n: int) -> float:
        """Growing waits keep a long job's step count low (Inngest allows 1000 steps a run):
        10, 15, 22, 34, 51, 60, 60 … seconds, so a 2-minute Veo operation takes 6 polls."""
        return min(self.poll_seconds * 1.5**n, self.max_poll_seconds)


def run_job(p: Pipeline, steps: Steps, job_id: str) -> None:
    """Generate every segment, then stitch them: the whole job, for a driver that does both."""
    keys = generate_segments(p, steps, job_id)
    stitch = start_stitch(p, steps, job_id, keys)
    wait_for_stitch(p, steps, job_id, stitch)


def generate_segments(p: Pipeline, steps: Steps, job_id: str) -> list[str]:
    """Make every segment; returns their keys in prompt order."""
    started: dict[str, Any] = steps.run("start", partial(_start, p, job_id))
    request = VideoRequest.model_validate(started["request"])
    user_id: str = started["userId"]
    made: dict[str, str] = started.get("made") or {}
    make = partial(_segment, p, steps, job_id, user_id, request, made)
    if not request.chain:
        return steps.parallel([partial(make, i, None) for i in range(len(request.prompts))])
    keys: list[str] = []
    first_frame: str | None = None
    for i in range(len(request.prompts)):
        keys.append(make(i, first_frame))
        if i + 1 < len(request.prompts):
            first_frame = steps.run(f"segment-{i}-last-frame", partial(_last_frame, p, job_id, i, keys[i]))
    return keys


def start_stitch(p: Pipeline, steps: Steps, job_id: str, keys: list[str]) -> str:
    """Mark the job stitching and start the concatenation; returns the stitch's name. Three
    steps, one fallible call each, so a retry redoes only the call that failed."""
    spec: dict[str, Any] = steps.run("stitch-begin", partial(_begin_stitch, p, job_id, keys))
    name: str = steps.run("stitch-start", partial(_stitch, p, spec))
    steps.run("stitch-record", partial(_record_stitch, p, job_id, name))
    return name


def wait_for_stitch(p: Pipeline, steps: Steps, job_id: str, name: str) -> None:
    """Poll the stitch to its end and complete the job (the in-process path; the cloud path has a poller)."""
    for n in range(p.max_polls):
        key: str | None = steps.run(f"stitch-poll-{n}", partial(_poll_stitch, p, job_id, name))
        if key is not None:
            steps.run("stitch-check", partial(_check_video, p, job_id, key))
            url: str | None = steps.run(
                "stitch-link", partial(p.blobs.signed_url, key, timedelta(hours=p.signed_url_hours))
            )
            steps.run("stitch-complete", partial(_complete, p, job_id, key, url))
            return
        steps.sleep(f"stitch-wait-{n}", p.wait_before_poll(n))
    raise PermanentError(f"the stitch {name} did not finish after {p.max_polls} polls")


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
    return {"request": job.request, "userId": job.user_id, "made": made}


def _running(job: Job) -> None:
    # A failed job reaches here when its failed run is replayed (Inngest's dashboard): it resumes
    # in place, as the resume use case would do it.
    if job.status is Status.FAILED:
        job.resume()
    else:
        job.move_to(Status.GENERATING)


def _segment(
    p: Pipeline,
    steps: Steps,
    job_id: str,
    user_id: str,
    request: VideoRequest,
    made: dict[str, str],
    index: int,
    first_frame: str | None,
) -> str:
    spec = SegmentSpec(
        job_id=job_id,
        user_id=user_id,
        index=index,
        prompt=request.prompts[index],
        seconds=request.segment_seconds,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        generate_audio=request.generate_audio,
        output_key=segment_key(job_id, index),
        seed=request.seed,
        negative_prompt=request.negative_prompt or None,
        first_frame_key=first_frame,
    )
    expected = expected_media(request)
    # Made by an earlier run of this job (before a resume, or a replay): kept if its file is there
    # and whole, else made again.
    earlier = made.get(str(index))
    if earlier:
        wrong: str | None = steps.run(f"segment-{index}-reuse", partial(_problem, p, earlier, expected))
        if wrong is None:
            return earlier
        steps.run(f"segment-{index}-discard", partial(_discard_segment, p, job_id, index, wrong))
    why = ""
    broken = False  # the last generation made a video that failed the check: it is paid for
    for generation in range(p.max_generations):
        # One fallible call a step, so a retry redoes only that call. The first generation's step
        # ids are the plain ones; a new generation (after an operation that ended with a transient
        # error) gets ids of its own: segment-3-begin-1, segment-3-start-1, segment-3-poll-1-0, …
        g = f"-{generation}" if generation else ""
        steps.run(f"segment-{index}-begin{g}", partial(_begin_segment, p, job_id, index, broken))
        started: str | dict[str, str] = steps.run(f"segment-{index}-start{g}", partial(_start_segment, p, spec))
        operation = started["operation"] if isinstance(started, dict) else started
        for n in range(p.max_polls):
            last = generation + 1 == p.max_generations
            polled: str | dict[str, str] | None = steps.run(
                f"segment-{index}-poll{g}-{n}", partial(_poll_segment, p, job_id, index, operation, last)
            )
            if isinstance(polled, str):
                problem: str | None = steps.run(
                    f"segment-{index}-check{g}", partial(_check_segment, p, job_id, index, polled, expected, last)
                )
                if problem is None:
                    steps.run(f"segment-{index}-done", partial(_complete_segment, p, job_id, index, polled))
                    return polled
                why, broken = problem, True  # a new generation, as for an operation that failed
                break
            if polled is not None:  # {"again": reason}: this operation failed for a reason that may pass
                why, broken = polled["again"], False
                break
            steps.sleep(f"segment-{index}-wait{g}-{n}", p.wait_before_poll(n))
        else:
            raise PermanentError(f"scene {index + 1}: the model did not finish after {p.max_polls} polls")
    raise AssertionError(f"scene {index + 1}: the last generation's poll returned {why!r}")  # it raises


def _begin_segment(p: Pipeline, job_id: str, index: int, last_was_broken: bool = False) -> None:
    # One step a generation: the attempt is counted before the model is asked; a last generation
    # whose video failed the check is paid for here, with it.
    def begin(j: Job) -> None:
        j.start_segment(index, billed_usd=p.pricing.scene_usd(j.video_request) if last_was_broken else 0.0)

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


def _last_frame(p: Pipeline, job_id: str, index: int, video_key: str) -> str:
    key = frame_key(job_id, index)
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
        output_key=final_key(job_id),
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
