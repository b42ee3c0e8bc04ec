"""The `longform` command as a person runs it: a subprocess, real files, exit codes, output."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.media import probe
from longform import bootstrap
from longform.adapters.preview_video_model import PreviewVideoModel
from longform.adapters.sqlite import Database
from longform.adapters.sqlite_job_store import SqliteJobStore
from longform.config import Settings
from longform.errors import PermanentError
from longform.job import Job, Status
from longform.ports import SegmentSpec
from longform.request import validate_request

FPS = 24


def longform(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "longform", *args],
        cwd=cwd,
        env={**os.environ, "LONGFORM_RETRY_BASE_SECONDS": "0.01", **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["a scene", "--segment-seconds", "5"], "segmentSeconds"),
        (["a scene", "   "], "prompts[1]"),
        (["a scene", "--aspect-ratio", "4:3"], "aspectRatio"),
        (["a scene", "--resolution", "480p"], "resolution"),
        (["a scene", "--seed", "-3"], "seed"),
        (["a scene", "--concurrency", "0"], "concurrency"),
        ([], "prompts"),
        (["--prompts-file", "missing.txt"], "--prompts-file"),
    ],
)
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(tmp_path: Path, args: list[str], field: str) -> None:
    data = tmp_path / "data"
    result = longform("generate", *args, "--data-dir", str(data), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # errors are on stderr only
    assert field in result.stderr
    assert not data.exists()
    assert list(tmp_path.iterdir()) == []  # nothing at all was created
    listed = longform("list", "--json", "--data-dir", str(data), cwd=tmp_path)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    assert not data.exists()


def test_a_prompts_file_of_only_comments_is_an_empty_prompt_list(tmp_path: Path) -> None:
    (tmp_path / "scenes.txt").write_text("# nothing yet\n\n   \n# still nothing\n")
    result = longform("generate", "--prompts-file", "scenes.txt", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert "prompts: must have at least 1 prompt" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_generate_json_prints_one_object_and_writes_the_video(tmp_path: Path) -> None:
    (tmp_path / "scenes.txt").write_text("# two scenes\nA paper boat on a puddle\n\nRain stops, sun comes out\n")
    result = longform(
        "generate", "--prompts-file", "scenes.txt", "--segment-seconds", "4", "--out", "out/v.mp4", "--json",
        "--data-dir", "data", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert set(summary) >= {"jobId", "status", "output", "durationSeconds", "segments", "timings"}
    assert summary["status"] == "completed"
    assert summary["output"] == str((tmp_path / "out/v.mp4").resolve())
    assert abs(summary["durationSeconds"] - 8) <= 2 / FPS
    assert [s["prompt"] for s in summary["segments"]] == ["A paper boat on a puddle", "Rain stops, sun comes out"]
    assert abs(probe(tmp_path / "out/v.mp4").frames - 2 * 4 * FPS) <= 1
    # not a terminal: plain progress lines, on stderr because of --json
    assert "Imaginating Scene... scene 1 of 2" in result.stderr
    assert "Imaginating Scene... scene 2 of 2" in result.stderr
    assert "Stitching Masterpiece..." in result.stderr
    assert "[100%]" in result.stderr

    listed = json.loads(longform("list", "--json", "--data-dir", "data", cwd=tmp_path).stdout)
    assert [j["jobId"] for j in listed] == [summary["jobId"]]
    status = longform("status", summary["jobId"], "--data-dir", "data", cwd=tmp_path)
    assert status.returncode == 0 and "completed" in status.stdout


def test_status_of_an_unknown_job_exits_2(tmp_path: Path) -> None:
    result = longform("status", "nope", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2 and "nope" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_a_killed_generate_finishes_with_resume_without_remaking_finished_segments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    prompts = ["Clouds over a valley", "A hawk circles", "The hawk dives", "It lands on a branch"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "longform", "generate", *prompts, "--data-dir", str(data), "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = SqliteJobStore(Database(data / "longform.db"))
    deadline = time.monotonic() + 120
    job = None
    while time.monotonic() < deadline:  # kill once two segments are done and the third is under way
        jobs = store.list() if (data / "longform.db").exists() else []
        if jobs and jobs[0].completed_here >= 2:
            proc.send_signal(signal.SIGKILL)
            job = jobs[0]
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    assert job is not None and proc.returncode == -signal.SIGKILL
    job = store.get(job.job_id)
    assert job.status is Status.GENERATING, "the job ran to its end before it could be killed"
    finished = [s.index for s in job.segments if s.status == "completed"]
    made = {i: (data / f"blobs/jobs/{job.job_id}/segments/{i}.mp4").stat() for i in finished}
    listed = longform("list", "--data-dir", str(data), cwd=tmp_path)  # the killed process holds it no more
    assert [line.split()[1] for line in listed.stdout.splitlines() if line.startswith(job.job_id)] == ["interrupted"]
    status = longform("status", job.job_id, "--data-dir", str(data), cwd=tmp_path)
    assert f"continue with longform resume {job.job_id}" in status.stdout

    result = longform("resume", job.job_id, "--data-dir", str(data), "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    for i, before in made.items():  # the very same files: not rendered again
        after = (data / f"blobs/jobs/{job.job_id}/segments/{i}.mp4").stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [s["attempts"] for s in summary["segments"]][: len(finished)] == [1] * len(finished)
    assert abs(probe(Path(summary["output"])).frames - 4 * 8 * FPS) <= 3


@pytest.mark.slow
def test_random_kills_and_resumes_make_the_very_bytes_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL at seeded random moments, `longform resume` after each, until the job completes:
    the final file is byte-identical to one run without a kill, and only the scenes in flight at a
    kill were generated again (none, with the preview renderer: a resumed run polls the operation
    the killed one started)."""
    prompts = ["Rain on a tin roof", "A cat watches", "The rain stops", "The cat steps out"]
    common = ["--seed", "11", "--segment-seconds", "4", "--data-dir"]
    rng = random.Random(20261129)
    data = tmp_path / "killed"
    store = SqliteJobStore(Database(data / "longform.db"))
    command = [sys.executable, "-m", "longform", "generate", *prompts, *common, str(data)]
    kills = 0
    # Three kills at seeded moments, then a run left to its end: however slow the machine, the job
    # ends, and each kill lands wherever the run had got to by then.
    for delay in [rng.uniform(0.5, 3.0) for _ in range(3)] + [None]:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        if not store.list():  # killed before it wrote the job (a slow start): nothing to resume yet
            continue
        [job] = store.list()
        if proc.returncode == 0 and job.status is Status.COMPLETED:
            break
        command = [sys.executable, "-m", "longform", "resume", job.job_id, "--data-dir", str(data)]
    assert store.list() and store.list()[0].status is Status.COMPLETED, f"not completed after {kills} kills"

    clean = longform("generate", *prompts, *common, str(tmp_path / "clean"), "--json", cwd=tmp_path)

    assert clean.returncode == 0, clean.stderr
    assert kills >= 1, "no run was killed: nothing was tested"
    reference = Path(json.loads(clean.stdout)["output"]).read_bytes()
    assert store.get(job.job_id).video_uri is not None
    killed_video = data / f"blobs/jobs/{job.job_id}/final/video.mp4"
    assert hashlib.sha256(killed_video.read_bytes()).hexdigest() == hashlib.sha256(reference).hexdigest()
    made = store.get(job.job_id)
    extra = sum(s.attempts for s in made.segments) - len(prompts)
    print(f"\n{kills} kills, {extra} scene(s) generated again (each was in flight at a kill)")
    assert 0 <= extra <= kills


@pytest.mark.slow
def test_a_failed_job_resumes_in_place_making_only_its_missing_scenes(tmp_path: Path) -> None:
    """Scene 3 fails (a renderer that refuses it, in this process); `longform resume` then makes
    scenes 3 and 4 only, and the video is whole."""
    data = tmp_path / "data"

    class RefusesScene3(PreviewVideoModel):
        def start(self, spec: SegmentSpec) -> str:
            if spec.index == 2:
                raise PermanentError("the renderer refused scene 3")
            return super().start(spec)

    local = bootstrap.local(Settings(data_dir=data, retry_base_seconds=0.01), model=RefusesScene3)
    prompts = ["Dawn over a lake", "Mist lifts", "A boat sets out", "It reaches the far shore"]
    job_id = local.service.trigger(bootstrap.LOCAL_USER, {"prompts": prompts, "segmentSeconds": 4})["jobId"]
    assert local.engine.finished[job_id].wait(120)
    failed = local.service.job(bootstrap.LOCAL_USER, job_id)
    assert (failed.status, failed.error_step) == (Status.FAILED, "segment-2-start")
    made = {i: (data / f"blobs/jobs/{job_id}/segments/{i}.mp4").stat() for i in (0, 1)}

    result = longform("resume", job_id[:8], "--data-dir", str(data), "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    for i, before in made.items():  # the very same files: not rendered again
        after = (data / f"blobs/jobs/{job_id}/segments/{i}.mp4").stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [s["attempts"] for s in summary["segments"]] == [1, 1, 2, 1]
    assert abs(probe(Path(summary["output"])).frames - 4 * 4 * FPS) <= 3
    assert len(local.service.job(bootstrap.LOCAL_USER, job_id).resumes) == 1


@pytest.mark.slow
def test_two_resumes_of_one_job_at_once_run_it_once_and_the_other_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    local = bootstrap.local(Settings(data_dir=data))
    prompts = [f"Scene {i} of a long walk" for i in range(4)]
    job = Job.new(validate_request({"prompts": prompts, "segmentSeconds": 4}), bootstrap.LOCAL_USER.user_id)
    local.pipeline.jobs.create(job)  # made, never run: interrupted

    command = [sys.executable, "-m", "longform", "resume", job.job_id, "--data-dir", str(data)]
    both = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted((proc.wait(timeout=240), proc.stderr.read() if proc.stderr else "") for proc in both)

    assert [code for code, _ in outcomes] == [0, 3], outcomes
    assert "is being run by another process" in outcomes[1][1]
    done = local.pipeline.jobs.get(job.job_id)
    assert done.status is Status.COMPLETED
    assert [s.attempts for s in done.segments] == [1, 1, 1, 1]  # every scene made once
