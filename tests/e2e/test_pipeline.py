"""The whole embedded pipeline on real files: render, chain, stitch, resume, retry — then decode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from devtools.media import audio_onsets, probe, psnr
from longform import bootstrap
from longform.config import Settings
from longform.errors import TransientError
from longform.job import Job, SegmentStatus, Status
from longform.ports import BlobStore, Operation, SegmentSpec, VideoModel, final_key
from longform.request import validate_request

FPS = 24


class Crash(BaseException):
    """Stands in for the process dying mid-render."""


class ScriptedModel:
    """The real preview renderer, counted, with failures injected per segment index."""

    def __init__(self, inner: VideoModel, failures: dict[int, list[BaseException]] | None = None) -> None:
        self.inner = inner
        self.failures = failures or {}
        self.starts: Counter[int] = Counter()

    def start(self, spec: SegmentSpec) -> str:
        self.starts[spec.index] += 1
        pending = self.failures.get(spec.index)
        if pending:
            raise pending.pop(0)
        return self.inner.start(spec)

    def poll(self, operation: str) -> Operation:
        return self.inner.poll(operation)


def preview_model(
    failures: dict[int, list[BaseException]] | None = None,
) -> tuple[list[ScriptedModel], Callable[[BlobStore], VideoModel]]:
    from longform.adapters.preview_video_model import PreviewVideoModel

    made: list[ScriptedModel] = []

    def build(blobs: BlobStore) -> VideoModel:
        made.append(ScriptedModel(PreviewVideoModel(blobs), failures))
        return made[-1]

    return made, build


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", retry_base_seconds=0.01, poll_seconds=0)


def run(local: bootstrap.Local, prompts: list[str], **fields: object) -> Job:
    job = Job.new(validate_request({"prompts": prompts, **fields}), bootstrap.LOCAL_USER.user_id)
    local.pipeline.jobs.create(job)
    return local.runner.run(job.job_id)


def final_path(local: bootstrap.Local, job: Job) -> Path:
    with local.pipeline.blobs.local_path(final_key(job.job_id)) as path:
        return path


def frames_at(path: Path, indexes: set[int]) -> dict[int, np.ndarray]:
    """Decode once, keep only the frames asked for (a whole 720p video would not fit in memory kindly)."""
    found = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indexes:
                found[i] = frame.to_ndarray(format="rgb24")
    return found


def boundary_psnrs(path: Path, scenes: int, seconds: int) -> list[float]:
    per = seconds * FPS
    wanted = {i * per + d for i in range(1, scenes) for d in (-1, 0)}
    got = frames_at(path, wanted)
    return [psnr(got[i * per - 1], got[i * per]) for i in range(1, scenes)]


PROMPTS = ["A red fox runs through snow", "The fox leaps over a frozen stream", "Night falls over the forest"]


@pytest.mark.slow
def test_three_chained_scenes_become_one_continuous_video(tmp_path: Path) -> None:
    local = bootstrap.local(settings(tmp_path))
    job = run(local, PROMPTS, segmentSeconds=4)

    assert job.status is Status.COMPLETED and job.progress == 100
    video = final_path(local, job)
    info = probe(video)
    assert abs(info.frames - 3 * 4 * FPS) <= 2  # ±1 per boundary
    assert info.fps == FPS
    assert (info.width, info.height) == (1280, 720)
    assert abs(info.duration - 12) <= 3 / FPS
    assert info.has_audio and abs(info.audio_samples / info.sample_rate - 12) <= 3 / FPS
    # each scene's first frame is the previous scene's last frame
    assert all(value >= 30 for value in boundary_psnrs(video, 3, 4))
    # the audio of every scene starts with its video, not drifting across joins
    onsets = audio_onsets(video)
    assert len(onsets) == 3
    assert all(abs(t - 4 * i) <= 1 / FPS for i, t in enumerate(onsets))
    assert job.video_uri == video.as_uri()
    assert [s.attempts for s in job.segments] == [1, 1, 1]


@pytest.mark.slow
def test_unchained_portrait_scenes_without_audio_are_independent(tmp_path: Path) -> None:
    local = bootstrap.local(settings(tmp_path))
    job = run(local, PROMPTS, segmentSeconds=4, chain=False, aspectRatio="9:16", generateAudio=False)

    assert job.status is Status.COMPLETED
    video = final_path(local, job)
    info = probe(video)
    assert (info.width, info.height) == (720, 1280)
    assert abs(info.frames - 3 * 4 * FPS) <= 2
    assert not info.has_audio
    assert all(value < 30 for value in boundary_psnrs(video, 3, 4))


@pytest.mark.slow
def test_a_job_crashed_on_segment_2_resumes_without_rendering_earlier_segments_again(tmp_path: Path) -> None:
    made, model = preview_model({2: [Crash()]})
    local = bootstrap.local(settings(tmp_path), model=model)
    job = Job.new(validate_request({"prompts": [*PROMPTS, "Dawn again"], "segmentSeconds": 4}), "local")
    local.pipeline.jobs.create(job)
    with pytest.raises(Crash):
        local.runner.run(job.job_id)
    assert local.pipeline.jobs.get(job.job_id).status is Status.GENERATING

    resumed = bootstrap.local(settings(tmp_path), model=model)  # a fresh process's view
    done = resumed.runner.run(job.job_id)

    assert done.status is Status.COMPLETED
    assert made[0].starts == Counter({0: 1, 1: 1, 2: 1})
    assert made[1].starts == Counter({2: 1, 3: 1})
    straight = bootstrap.local(Settings(data_dir=tmp_path / "straight"))
    reference = run(straight, [*PROMPTS, "Dawn again"], segmentSeconds=4)
    assert probe(final_path(resumed, done)).frames == probe(final_path(straight, reference)).frames


@pytest.mark.slow
def test_a_segment_that_fails_twice_transiently_is_retried_and_the_job_completes(tmp_path: Path) -> None:
    made, model = preview_model({1: [TransientError("503 unavailable"), TransientError("503 unavailable")]})
    local = bootstrap.local(settings(tmp_path), model=model)
    job = run(local, PROMPTS[:2], segmentSeconds=4)

    assert job.status is Status.COMPLETED
    assert [s.attempts for s in job.segments] == [1, 1]  # one generation; its start call was retried
    assert made[0].starts == Counter({0: 1, 1: 3})
    assert abs(probe(final_path(local, job)).frames - 2 * 4 * FPS) <= 1


@pytest.mark.slow
def test_a_permanent_model_error_fails_the_job_and_keeps_earlier_segments(tmp_path: Path) -> None:
    from longform.errors import PermanentError

    _, model = preview_model({1: [PermanentError("scene 2 was blocked by the safety filter")]})
    local = bootstrap.local(settings(tmp_path), model=model)
    job = run(local, PROMPTS, segmentSeconds=4)

    assert job.status is Status.FAILED
    assert job.error == "scene 2 was blocked by the safety filter" and job.error_step == "segment-1-start"
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED, SegmentStatus.FAILED, SegmentStatus.PENDING]
    assert probe(Path(job.segments[0].uri.removeprefix("file://"))).frames == 4 * FPS
