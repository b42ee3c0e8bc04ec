"""The ids `longform list` shows are ids `status` and `resume` accept: never cut, and like git,
any unique prefix of at least 4 characters names its job."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from longform import bootstrap
from longform.adapters.sqlite import Database
from longform.adapters.sqlite_job_store import SqliteJobStore
from longform.job import Job
from longform.request import validate_request
from tests.e2e.test_cli import longform


def queue_jobs(data: Path, ids: list[str], **fields: object) -> None:
    """Jobs as `generate` stores them before they run (no rendering: quick)."""
    store = SqliteJobStore(Database(data / "longform.db"))
    for i, job_id in enumerate(ids):
        request = validate_request({"prompts": [f"Scene {i} of a story told at length"], **fields})
        store.create(Job.new(request, bootstrap.LOCAL_USER.user_id, job_id))


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_list_shows_whole_job_ids_at_any_width(tmp_path: Path, columns: str) -> None:
    ids = [uuid.uuid4().hex for _ in range(3)]
    queue_jobs(tmp_path / "data", ids)
    result = longform("list", "--data-dir", "data", cwd=tmp_path, env={"COLUMNS": columns})
    assert result.returncode == 0, result.stderr
    for job_id in ids:
        assert any(line.split()[0] == job_id for line in result.stdout.splitlines()), result.stdout
    assert "…" not in result.stdout


def test_status_takes_a_unique_prefix_and_refuses_an_ambiguous_or_short_one(tmp_path: Path) -> None:
    twins = [f"d3153c2f{uuid.uuid4().hex[8:]}" for _ in range(2)]
    other = uuid.uuid4().hex
    queue_jobs(tmp_path / "data", [*twins, other])

    for ref in (other[:4], other[:12], other):
        result = longform("status", ref, "--data-dir", "data", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"job {other}  interrupted")  # made by the test: nothing runs it
    shown = json.loads(longform("status", twins[1][:10], "--json", "--data-dir", "data", cwd=tmp_path).stdout)
    assert shown["jobId"] == twins[1]

    ambiguous = longform("status", "d3153c2f", "--data-dir", "data", cwd=tmp_path)
    assert ambiguous.returncode == 2 and ambiguous.stdout == ""
    assert "'d3153c2f' names more than one job" in ambiguous.stderr
    body = json.loads(longform("status", "d3153c2f", "--json", "--data-dir", "data", cwd=tmp_path).stdout)
    assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["field"] == "jobId"
    assert "names more than one job" in body["error"]["message"]

    short = longform("status", other[:3], "--json", "--data-dir", "data", cwd=tmp_path)  # shorter than git allows
    assert short.returncode == 2
    assert json.loads(short.stdout)["error"]["status"] == "NOT_FOUND"


@pytest.mark.slow
def test_resume_takes_the_prefix_of_an_id_from_list(tmp_path: Path) -> None:
    job_id = uuid.uuid4().hex
    queue_jobs(tmp_path / "data", [job_id], segmentSeconds=4)
    listed = longform("list", "--data-dir", "data", cwd=tmp_path, env={"COLUMNS": "40"})
    shown = next(line.split()[0] for line in listed.stdout.splitlines() if line.startswith(job_id[:4]))

    result = longform("resume", shown[:8], "--json", "--data-dir", "data", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["jobId"], summary["status"]) == (job_id, "completed")
    assert f"resuming job {job_id} (queued, 0%)" in result.stderr
