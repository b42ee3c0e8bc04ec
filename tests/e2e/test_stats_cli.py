"""`longform stats` over a designed mix of real local jobs (tests/stats_mix.py): the rates, counts,
failures by step, quota hits and costs are the design's numbers; the latencies are the stored
timestamps' (the workflow takes no clock), computed here independently of stats.py. The same jobs
in Firestore give the same figures."""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from longform.job import Job, SegmentStatus, Status
from tests.e2e.test_cli import longform
from tests.stats_mix import make_mix

# Prices (prices.py): scenes as veo-3.1-fast-generate-001, $0.15 a second with audio and $0.10
# without; the stitch as Transcoder HD output (720p), $0.030 a minute. A scene is billed when it
# is made (a generation that ended in an error made no video), the stitch when it succeeds.
WITH_AUDIO, SILENT, HD_MINUTE = 0.15, 0.10, 0.030
COMPLETED = 2 * 4 * WITH_AUDIO + 8 / 60 * HD_MINUTE
RETRIED = 3 * 4 * WITH_AUDIO + 12 / 60 * HD_MINUTE
QUOTA = 2 * 6 * SILENT + 12 / 60 * HD_MINUTE
BLOCKED = 1 * 4 * WITH_AUDIO  # scene 1 made; scene 2 blocked, scene 3 never begun
STITCH_FAILS = 2 * 4 * WITH_AUDIO  # both scenes, no stitch
CANCELLED = 1 * 4 * WITH_AUDIO  # scene 1 made; cancelled while scene 2 was generated
ANA = COMPLETED + RETRIED + STITCH_FAILS
BEN = QUOTA + BLOCKED + CANCELLED


def rate(done: int, of: int) -> dict[str, Any]:
    return {"done": done, "of": of, "rate": pytest.approx(done / of, abs=1e-6) if of else None}


# Scenes begun: 2 + 3 + 2 + 2 + 2 + 2 (blocked's and cancelled's third never began); made: all but
# blocked's 2nd and 3rd and cancelled's 2nd and 3rd; at the first attempt: all made but retried's 2nd.
# Stitches begun: every job but blocked and cancelled. Quota hits: quota's scene 1 twice, retried's
# stitch once.
DESIGNED = {
    "jobs": 6,
    "byStatus": {"cancelled": 1, "completed": 3, "failed": 2},
    "scenesFirstAttempt": rate(10, 13),
    "scenesCompleted": rate(11, 13),
    "stitchesCompleted": rate(3, 4),
    "jobsFailed": rate(2, 6),
    "failuresByStep": {"segment-poll": 1, "stitch-start": 1},
    "quotaHits": 3,
    "costByUser": {"ana": pytest.approx(ANA, abs=1e-6), "ben": pytest.approx(BEN, abs=1e-6)},
    "costUsd": pytest.approx(ANA + BEN, abs=1e-6),
    "estimated": True,
    "since": None,
    "user": None,
}
LATENCIES = ("jobLatency", "sceneLatency", "stitchLatency")


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Job]]:
    data = tmp_path_factory.mktemp("stats") / "data"
    return data, make_mix(data)


def stats_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = longform("stats", "--json", *args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)  # exactly one JSON document
    return figures


# -- the latencies, from the stored timestamps ------------------------------------------------------


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def interpolated(values: list[float], q: float) -> float:
    """The q-th percentile, interpolating linearly between the two nearest ranks."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    return low + (high - low) * (rank - math.floor(rank))


def latency(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    p50, p95 = (pytest.approx(interpolated(values, q), abs=1e-3) for q in (0.5, 0.95))
    return {"count": len(values), "p50": p50, "p95": p95, "max": pytest.approx(max(values), abs=1e-3)}


def latencies(jobs: list[Job]) -> dict[str, Any]:
    completed = [j for j in jobs if j.status is Status.COMPLETED]
    made = [s for j in jobs for s in j.segments if s.status is SegmentStatus.COMPLETED]
    return {
        "jobLatency": latency([seconds(j.timings["createdAt"], j.timings["completedAt"]) for j in completed]),
        "sceneLatency": latency([seconds(s.started_at or "", s.completed_at or "") for s in made]),
        "stitchLatency": latency([seconds(j.timings["stitchStartedAt"], j.timings["completedAt"]) for j in completed]),
    }


# -- the figures --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_stats_json_over_the_mix_gives_the_designed_figures(mix: tuple[Path, dict[str, Job]], tmp_path: Path) -> None:
    data, jobs = mix

    figures = stats_json("--data-dir", str(data), cwd=tmp_path)

    assert {k: v for k, v in figures.items() if k not in LATENCIES} == DESIGNED
    assert {k: figures[k] for k in LATENCIES} == latencies(list(jobs.values()))
    assert [figures[k]["count"] for k in LATENCIES] == [3, 11, 3]  # completed jobs, scenes made, stitches


@pytest.mark.slow
def test_user_keeps_only_that_users_jobs(mix: tuple[Path, dict[str, Job]], tmp_path: Path) -> None:
    data, jobs = mix

    figures = stats_json("--data-dir", str(data), "--user", "ben", cwd=tmp_path)

    assert {k: v for k, v in figures.items() if k not in LATENCIES} == DESIGNED | {
        "jobs": 3,
        "byStatus": {"cancelled": 1, "completed": 1, "failed": 1},
        "scenesFirstAttempt": rate(4, 6),
        "scenesCompleted": rate(4, 6),
        "stitchesCompleted": rate(1, 1),
        "jobsFailed": rate(1, 3),
        "failuresByStep": {"segment-poll": 1},
        "quotaHits": 2,
        "costByUser": {"ben": pytest.approx(BEN, abs=1e-6)},
        "costUsd": pytest.approx(BEN, abs=1e-6),
        "user": "ben",
    }
    assert {k: figures[k] for k in LATENCIES} == latencies([jobs[n] for n in ("quota", "blocked", "cancelled")])


@pytest.mark.slow
def test_since_keeps_the_jobs_created_at_or_after_it(mix: tuple[Path, dict[str, Job]], tmp_path: Path) -> None:
    data, jobs = mix
    blocked = jobs["blocked"].timings["createdAt"]  # the 4th job: blocked, stitch-fails and cancelled follow
    two_hours_east = datetime.fromisoformat(blocked).astimezone(timezone(timedelta(hours=2))).isoformat()

    figures = stats_json("--data-dir", str(data), "--since", blocked, cwd=tmp_path)

    assert {k: v for k, v in figures.items() if k not in LATENCIES} == DESIGNED | {
        "jobs": 3,
        "byStatus": {"cancelled": 1, "failed": 2},
        "scenesFirstAttempt": rate(4, 6),
        "scenesCompleted": rate(4, 6),
        "stitchesCompleted": rate(0, 1),
        "jobsFailed": rate(2, 3),
        "quotaHits": 0,
        "costByUser": {
            "ana": pytest.approx(STITCH_FAILS, abs=1e-6),
            "ben": pytest.approx(BLOCKED + CANCELLED, abs=1e-6),
        },
        "costUsd": pytest.approx(STITCH_FAILS + BLOCKED + CANCELLED, abs=1e-6),
        "since": blocked,
    }
    assert figures["jobLatency"]["count"] == figures["stitchLatency"]["count"] == 0
    assert stats_json("--data-dir", str(data), "--since", two_hours_east, cwd=tmp_path) == figures  # the same instant


@pytest.mark.slow
def test_since_a_date_means_from_its_start_in_utc(mix: tuple[Path, dict[str, Job]], tmp_path: Path) -> None:
    data, jobs = mix
    first = datetime.fromisoformat(jobs["completed"].timings["createdAt"]).date()
    after_the_last = datetime.fromisoformat(jobs["cancelled"].timings["createdAt"]).date() + timedelta(days=1)

    everything = stats_json("--data-dir", str(data), "--since", first.isoformat(), cwd=tmp_path)
    nothing = stats_json("--data-dir", str(data), "--since", after_the_last.isoformat(), cwd=tmp_path)

    assert (everything["jobs"], everything["since"]) == (6, f"{first.isoformat()}T00:00:00.000Z")
    assert nothing["jobs"] == 0 and nothing["costUsd"] == 0 and nothing["jobsFailed"]["rate"] is None


@pytest.mark.slow
def test_the_table_shows_the_key_figures_one_row_a_line(mix: tuple[Path, dict[str, Job]], tmp_path: Path) -> None:
    data, _ = mix

    result = longform("stats", "--data-dir", str(data), cwd=tmp_path)

    assert (result.returncode, result.stderr) == (0, "")
    lines = [re.sub(r"\s+", " ", line.strip()) for line in result.stdout.splitlines()]
    for row in [
        "6 job(s) of all users",
        "completed 3",
        "failed 2",
        "cancelled 1",
        "scenes made at the first attempt 10 13 76.9%",
        "scenes made in the end 11 13 84.6%",
        "stitches completed 3 4 75.0%",
        "jobs failed 2 6 33.3%",
        "at segment-poll 1",
        "at stitch-start 1",
        "quota hits: 3 (calls refused for quota, 429 / RESOURCE_EXHAUSTED; each was retried)",
        "ana $4.21",
        "ben $2.41",
        "all users $6.62",
        "estimate: jobs made by the preview renderer are priced as if made on Veo; nothing was billed for them",
    ]:
        assert row in lines, result.stdout
    for label, count in [("job, queued → completed", 3), ("scene, started → made", 11), ("stitch, started", 3)]:
        assert any(re.fullmatch(rf"{label}.* {count}( \d+(\.\d+)?s){{3}}", line) for line in lines), result.stdout


# -- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["yesterday", "29/11/2026", "2026-11-31", ""])
def test_a_bad_since_is_refused_naming_the_option_and_the_format(tmp_path: Path, since: str) -> None:
    human = longform("stats", "--since", since, "--data-dir", "data", cwd=tmp_path)
    assert (human.returncode, human.stdout) == (2, "")
    assert "argument --since: must be a date (YYYY-MM-DD) or an ISO 8601 time" in human.stderr

    result = longform("stats", "--since", since, "--data-dir", "data", "--json", cwd=tmp_path)
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert (error["status"], error["field"]) == ("INVALID_ARGUMENT", "--since")
    assert not (tmp_path / "data").exists()


def test_firestore_without_a_project_outside_the_emulator_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)

    result = longform("stats", "--firestore", cwd=tmp_path)
    both = longform("stats", "--firestore", "a-project", "--data-dir", "data", cwd=tmp_path)

    assert (result.returncode, result.stdout) == (2, "")
    assert "--firestore: name the project (--firestore PROJECT, or GOOGLE_CLOUD_PROJECT)" in result.stderr
    assert both.returncode == 2 and "give one of --firestore and --data-dir" in both.stderr


# -- Firestore ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_same_jobs_in_firestore_give_the_same_figures(
    mix: tuple[Path, dict[str, Job]], tmp_path: Path, firestore_emulator: object
) -> None:
    from google.cloud import firestore

    from longform.adapters.firestore_job_store import FirestoreJobStore

    data, jobs = mix
    project = f"demo-stats-{uuid.uuid4().hex[:8]}"  # a project of its own: only these jobs in its videoJobs
    client = firestore.Client(project=project)  # on the emulator: the fixture set FIRESTORE_EMULATOR_HOST
    store = FirestoreJobStore(client, "videoJobs")
    for job in jobs.values():
        store.create(job)
    client.close()

    for args in ([], ["--user", "ana"], ["--since", jobs["blocked"].timings["createdAt"]]):
        local = stats_json("--data-dir", str(data), *args, cwd=tmp_path)
        assert stats_json("--firestore", project, *args, cwd=tmp_path) == local, args
        if not args:  # the project named by the environment, as the functions find theirs
            env = {"GOOGLE_CLOUD_PROJECT": project, "GCLOUD_PROJECT": ""}
            assert stats_json("--firestore", cwd=tmp_path, env=env) == local
