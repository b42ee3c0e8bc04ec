"""Ctrl-C on `longform generate`: exit code 130, the resume hint on stderr, and the job resumable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from longform.adapters.sqlite import Database
from longform.adapters.sqlite_job_store import SqliteJobStore
from longform.job import Status
from tests.e2e.test_cli import longform

# Four 8 s scenes at 720p take seconds to render: the job is still running when Ctrl-C comes.
PROMPTS = ["Dawn over a harbour", "Boats leave one by one", "Gulls follow the last boat", "The harbour is empty"]


def interrupt_once_rendering(tmp_path: Path, *flags: str) -> tuple[int, str, str, str]:
    """Start `generate`, send SIGINT once the first scene is being made; the exit code, stdout,
    stderr and the job's id (from the first progress line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "longform", "generate", *PROMPTS, "--data-dir", "data", *flags],
        cwd=tmp_path,
        env={**os.environ, "LONGFORM_RETRY_BASE_SECONDS": "0.01"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    progress = proc.stderr if "--json" in flags else proc.stdout
    assert progress is not None
    seen = []
    for line in progress:  # rich flushes each line
        seen.append(line)
        if "Imaginating Scene... scene 1 of 4" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=60)
    match = re.match(r"job (\w+): 4 scene\(s\) × 8s", seen[0])
    assert match, seen
    if "--json" in flags:
        err = "".join(seen) + err
    else:
        out = "".join(seen) + out
    return proc.returncode, out, err, match.group(1)


@pytest.mark.slow
def test_ctrl_c_exits_130_with_the_resume_hint_on_stderr_and_the_hint_works(tmp_path: Path) -> None:
    code, out, err, job_id = interrupt_once_rendering(tmp_path)

    assert code == 130, err
    assert f"interrupted; continue with: longform resume {job_id}" in err.splitlines()
    assert "interrupted" not in out
    assert "Traceback" not in err
    job = SqliteJobStore(Database(tmp_path / "data/longform.db")).get(job_id)
    assert job.status is Status.GENERATING  # not failed, not cancelled: resumable

    resumed = longform("resume", job_id, "--json", "--data-dir", "data", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"


@pytest.mark.slow
def test_ctrl_c_with_json_prints_one_error_object_naming_the_job(tmp_path: Path) -> None:
    code, out, err, job_id = interrupt_once_rendering(tmp_path, "--json")

    assert code == 130, err
    hint = f"interrupted; continue with: longform resume {job_id}"
    assert hint in err.splitlines()
    assert json.loads(out) == {"error": {"status": "CANCELLED", "message": hint, "field": None, "jobId": job_id}}
