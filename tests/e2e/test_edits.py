"""Edits on the embedded pipeline, on real files: each version is a real MP4, decoded; the model's
starts are counted, so a scene paid for twice would show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devtools.media import probe
from longform import bootstrap
from longform.job import Job, Status
from tests.e2e.test_pipeline import FPS, ScriptedModel, boundary_psnrs, frames_at, preview_model, settings

pytestmark = pytest.mark.slow
USER = bootstrap.LOCAL_USER
SECONDS = 4
PROMPTS = ["A red fox runs through snow", "The fox leaps over a frozen stream", "An owl watches", "Night falls"]


class Studio:
    """The local service with a counted preview renderer, as `longform serve` runs it."""

    def __init__(self, tmp_path: Path) -> None:
        made, build = preview_model()
        self.local = bootstrap.local(settings(tmp_path), model=build)
        self.model: ScriptedModel = made[0]

    def make(self, prompts: list[str], **fields: Any) -> Job:
        ref = self.local.service.trigger(USER, {"prompts": prompts, "segmentSeconds": SECONDS, **fields})
        return self.wait(ref["jobId"])

    def edit(self, job: Job, scenes: list[dict[str, Any]], continuity: str = "keep") -> tuple[Job, int]:
        """The next version of ``job``, and how many model starts it took."""
        before = self.starts
        self.local.service.edit(USER, {"jobId": job.job_id, "scenes": scenes, "continuity": continuity})
        return self.wait(job.job_id), self.starts - before

    def wait(self, job_id: str) -> Job:
        assert self.local.engine.finished[job_id].wait(120)
        job = self.local.pipeline.jobs.get(job_id)
        assert job.status is Status.COMPLETED, job.error
        return job

    @property
    def starts(self) -> int:
        return sum(self.model.starts.values())

    def video(self, job: Job, version: int | None = None) -> Path:
        uri = job.video_uri if version in (None, job.version) else job.versions[(version or 1) - 1].video_uri
        assert uri is not None
        with self.local.pipeline.blobs.local_path(self.local.pipeline.blobs.key_of(uri)) as path:
            return path


def scene_frames(path: Path, scenes: int) -> list[list[np.ndarray]]:
    """The first, middle and last frame of each scene."""
    per = SECONDS * FPS
    wanted = [[i * per, i * per + per // 2, i * per + per - 1] for i in range(scenes)]
    got = frames_at(path, {f for scene in wanted for f in scene})
    return [[got[f] for f in scene] for scene in wanted]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def keep(*indexes: int) -> list[dict[str, Any]]:
    return [{"from": i} for i in indexes]


def test_a_new_prompt_for_scene_2_keeping_the_rest_makes_one_scene_and_leaves_the_others_as_they_were(
    tmp_path: Path,
) -> None:
    studio = Studio(tmp_path)
    v1 = studio.make(PROMPTS)
    assert studio.starts == 4
    scenes = [{"from": 0}, {"from": 1, "prompt": "The fox dives into a snowdrift"}, {"from": 2}, {"from": 3}]

    v2, starts = studio.edit(v1, scenes, "keep")

    assert starts == 1
    assert (v2.version, v2.versions[0].number) == (2, 1)
    assert v2.changes == ["scene 2: new prompt"]
    assert [s.reused for s in v2.segments] == [True, False, True, True]
    assert v2.cost is not None and v2.cost.scenes_usd == v2.segments[1].cost_usd > 0  # one scene paid
    old, new = studio.video(v2, 1), studio.video(v2)
    assert old != new and old.exists()  # version 1 still plays: its file is its own
    for path in (old, new):
        info = probe(path)
        assert abs(info.frames - 4 * SECONDS * FPS) <= 3 and abs(info.duration - 16) <= 4 / FPS
    before, after = scene_frames(old, 4), scene_frames(new, 4)
    assert [same(b, a) for b, a in zip(before, after, strict=True)] == [True, False, True, True]
    joins = boundary_psnrs(new, 4, SECONDS)
    assert joins[0] >= 30  # the new scene 2 starts from scene 1's last frame
    assert joins[1] < 30 <= joins[2]  # a cut into the kept scene 3, as the edit chose


def test_the_same_edit_keeping_continuity_makes_scenes_2_to_4_and_every_join_holds(tmp_path: Path) -> None:
    studio = Studio(tmp_path)
    v1 = studio.make(PROMPTS)
    scenes = [{"from": 0}, {"from": 1, "prompt": "The fox dives into a snowdrift"}, {"from": 2}, {"from": 3}]

    v2, starts = studio.edit(v1, scenes, "regenerate")

    assert starts == 3
    assert sorted(studio.model.starts.items()) == [(0, 1), (1, 2), (2, 2), (3, 2)]
    assert [s.reused for s in v2.segments] == [True, False, False, False]
    assert all(value >= 30 for value in boundary_psnrs(studio.video(v2), 4, SECONDS))
    assert same(scene_frames(studio.video(v2, 1), 4)[0], scene_frames(studio.video(v2), 4)[0])


def test_deleting_reordering_and_inserting_unchained_scenes_pays_only_for_the_new_one(tmp_path: Path) -> None:
    studio = Studio(tmp_path)
    v1 = studio.make(PROMPTS, chain=False)
    originals = scene_frames(studio.video(v1), 4)

    v2, starts = studio.edit(v1, keep(0, 1, 3))  # scene 3 deleted
    assert starts == 0
    assert abs(probe(studio.video(v2)).duration - 3 * SECONDS) <= 3 / FPS
    assert v2.changes == ["scene 3: deleted"]

    v3, starts = studio.edit(v2, keep(2, 0, 1))  # reordered: 4, 1, 2
    assert starts == 0
    frames = scene_frames(studio.video(v3), 3)
    assert [same(f, originals[k]) for f, k in zip(frames, (3, 0, 1), strict=True)] == [True, True, True]

    v4, starts = studio.edit(v3, [{"from": 0}, {"prompt": "A hare stops to listen"}, {"from": 1}, {"from": 2}])
    assert starts == 1
    assert v4.changes == ["scene 2: new"]
    assert abs(probe(studio.video(v4)).duration - 4 * SECONDS) <= 3 / FPS
    assert [v.number for v in v4.versions] == [1, 2, 3]
    playback = studio.local.service.playback(USER, {"jobId": v4.job_id, "version": 1})
    assert playback["version"] == 1 and playback["videoUrl"] is None  # no link maker here: a path is enough
    assert probe(studio.video(v4, 1)).frames == probe(studio.video(v1)).frames  # version 1 still there, whole
