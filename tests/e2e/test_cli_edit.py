"""`longform edit` as a person runs it: a subprocess on a real job, its plans, its new version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.media import probe
from tests.e2e.test_cli import longform

FPS = 24


@pytest.mark.slow
def test_edit_shows_each_choice_then_makes_the_new_version_and_bad_options_name_themselves(tmp_path: Path) -> None:
    made = longform(
        "generate", "a fox", "an owl", "a hare", "--segment-seconds", "4", "--json", "--data-dir", "d", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    job_id = json.loads(made.stdout)["jobId"]

    plans = longform("edit", job_id[:8], "--prompt", "2", "a wolf", "--dry-run", "--data-dir", "d", cwd=tmp_path)
    assert plans.returncode == 0, plans.stderr
    assert plans.stdout.splitlines() == [
        "continuity keep: 1 scene(s) to make (4s, about $0.60), 2 reused, 1 cut(s) at changed joins; "
        "scene 2: new prompt",
        "continuity regenerate: 2 scene(s) to make (8s, about $1.20), 1 reused; scene 2: new prompt",
    ]

    edited = longform(
        "edit", job_id, "--prompt", "2", "a wolf", "--insert-after", "0", "dawn", "--delete", "3",
        "--json", "--data-dir", "d", cwd=tmp_path,
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    summary = json.loads(edited.stdout)
    assert (summary["version"], summary["status"]) == (2, "completed")
    assert [s["prompt"] for s in summary["segments"]] == ["dawn", "a fox", "a wolf"]
    assert [s["reused"] for s in summary["segments"]] == [False, True, False]
    assert summary["output"].endswith("/final/v2.mp4")
    assert abs(probe(Path(summary["output"])).frames - 3 * 4 * FPS) <= 2

    status = longform("status", job_id, "--data-dir", "d", cwd=tmp_path)
    assert status.stdout.startswith(f"job {job_id}  version 2  completed")
    for args, words in (
        (["--prompt", "9", "x"], "--prompt: must name a scene of the job: 1 to 3, got 9"),
        (["--order", "1,1"], "--order: must name each scene at most once"),
        (["--delete", "1", "--prompt", "1", "x"], "--prompt: scene 1 is deleted or left out of --order"),
        ([], "scenes: the edit changes nothing"),
    ):
        refused = longform("edit", job_id, *args, "--data-dir", "d", cwd=tmp_path)
        assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
        assert words in refused.stderr
