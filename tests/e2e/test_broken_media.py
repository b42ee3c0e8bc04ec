"""Integrity before acceptance, the whole way: local jobs whose model hands back a broken file for
one scene (each case of the corrupt-media corpus, made from that scene's own render). No job ends
`completed` with a video that fails a full decode or has the wrong length: each case heals — a new
generation of the scene, or audio conformed by the stitcher — or the job fails naming the scene and
the problem. Model starts are counted: a broken file costs one more generation, never more."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from devtools.media import probe, truncated
from longform import bootstrap
from longform.adapters.preview_video_model import PreviewVideoModel
from longform.adapters.pyav_checker import media_problems
from longform.config import Settings
from longform.job import Job, SegmentStatus, Status
from longform.ports import BlobStore, MediaExpectation, SegmentSpec, final_key, segment_key
from tests.integration.test_media_integrity import CORPUS, Case

pytestmark = pytest.mark.slow

FPS = 24
SECONDS = 4
PROMPTS = ["A kite rises", "The string snaps", "It drifts over the sea"]


def run_job(tmp_path: Path, damage: Case, times: int) -> tuple[Job, list[int]]:
    """A 3-scene chained job whose model damages scene 2's file ``times`` times; the job and the
    indexes of every model start."""
    folders = (tmp_path / f"bad-{n}" for n in itertools.count())
    starts: list[int] = []

    class Damaging(PreviewVideoModel):
        def __init__(self, blobs: BlobStore) -> None:
            super().__init__(blobs)
            self.left = times

        def start(self, spec: SegmentSpec) -> str:
            starts.append(spec.index)
            operation = super().start(spec)
            if spec.index == 1 and self.left > 0:
                self.left -= 1
                folder = next(folders)
                folder.mkdir()
                with self.blobs.local_path(spec.output_key) as good:
                    bad = damage.make(good, folder)
                self.blobs.upload(spec.output_key, bad)
            return operation

    local = bootstrap.local(Settings(data_dir=tmp_path / "data", retry_base_seconds=0.01), model=Damaging)
    job_id = local.service.trigger(bootstrap.LOCAL_USER, {"prompts": PROMPTS, "segmentSeconds": SECONDS})["jobId"]
    assert local.engine.finished[job_id].wait(180)
    return local.service.job(bootstrap.LOCAL_USER, job_id), starts


@pytest.mark.parametrize("name", CORPUS)
def test_a_scene_made_broken_heals_and_the_video_decodes_whole(name: str, tmp_path: Path) -> None:
    job, starts = run_job(tmp_path, CORPUS[name], times=1)

    assert job.status is Status.COMPLETED, job.error
    # The checker refuses the file (audio is asked for, so a scene without it too): one more
    # generation of that scene. What it accepts (another sample rate or layout) the stitcher conforms.
    healed_by_generation = CORPUS[name].rejected is not None or name == "no audio among audio"
    assert starts == ([0, 1, 1, 2] if healed_by_generation else [0, 1, 2])
    assert [s.attempts for s in job.segments] == ([1, 2, 1] if healed_by_generation else [1, 1, 1])
    video = tmp_path / "data" / "blobs" / final_key(job.job_id)
    info = probe(video)
    assert (info.frames, info.corrupt_frames) == (3 * SECONDS * FPS, 0)
    assert info.duration == pytest.approx(3 * SECONDS, abs=1 / FPS)
    assert media_problems(video, MediaExpectation(3 * SECONDS, 1280, 720)) == []  # a full decode


def test_a_scene_broken_in_every_generation_fails_the_job_naming_the_scene_and_the_problem(tmp_path: Path) -> None:
    cut = Case(lambda good, folder: truncated(good, folder / "cut.mp4", 0.4), "truncated", "refuses")
    job, starts = run_job(tmp_path, cut, times=99)

    assert job.status is Status.FAILED
    assert starts == [0, 1, 1, 1]  # three generations of scene 2, then no more
    assert job.error is not None
    assert job.error.startswith(
        f"scene 2: 3 generations failed, the last made a broken file: {segment_key(job.job_id, 1)}: "
        "the file is truncated"
    ), job.error
    assert job.error_step == "segment-1-poll-2-0"  # the third generation's poll step, which checks its file
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED, SegmentStatus.FAILED, SegmentStatus.PENDING]
    assert not (tmp_path / "data" / "blobs" / final_key(job.job_id)).exists()
