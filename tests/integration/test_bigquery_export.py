"""The BigQuery export, checked without a cloud account: the extension declaration against the
extension's params, and each ``analytics/*.sql`` against ``longform stats``.

The queries are BigQuery SQL over ``<TABLE_ID>_raw_latest``, the view that
firebase/firestore-bigquery-export keeps of the live documents. Here the extension's changelog
table is a DuckDB table with its columns, filled from ``jobs`` the way the extension fills it: for
each write, a row with the document as the extension reads it from Firestore (what
``FirestoreJobStore`` writes, as Node's ``JSON.stringify`` prints it). Each document has several
rows (created queued, updated, one imported by the backfill script, one deleted), so the view's
"latest row, deleted left out" is exercised. The view itself is the extension's own SQL
(``tests/data/firestore-bigquery-export-views.json``, made by its change tracker for the params in
``extensions/*.env``); it and every query are transpiled with sqlglot (BigQuery → DuckDB) and run.
Each query's figures must equal ``stats.compute(jobs).to_json()``'s.

``jobs`` is a list of ``Job``s: any designed mix of jobs can be put in its place.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.budget import Usage
from longform.job import Job, Reservation, Segment, SegmentStatus, Status, iso_time
from longform.prices import PRICES, Pricing
from longform.request import validate_request
from longform.stats import compute
from tests.conftest import unavailable
from tests.stats_mix import make_mix

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS = ROOT / "analytics"
EXTENSIONS = ROOT / "extensions"
PARAMS = ROOT / "tests" / "data" / "firestore-bigquery-export-params.json"
VIEWS = ROOT / "tests" / "data" / "firestore-bigquery-export-views.json"
EXTENSION = "firebase/firestore-bigquery-export"
JOBS_INSTANCE = "bigquery-export-video-jobs"
USAGE_INSTANCE = "bigquery-export-usage"
PROJECT = "demo-longform"  # .firebaserc's; the extension's document names carry the project id

# -- the jobs -----------------------------------------------------------------------------------------

CLOUD = Pricing(PRICES, "veo-3.1-fast-generate-001", "transcoder", estimated=False)
LOCAL = Pricing(PRICES, "veo-3.1-fast-generate-001", "transcoder", estimated=True)  # priced, not billed
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _at(seconds: float) -> str:
    return iso_time(START + timedelta(seconds=seconds))


class _Run:
    """A job made through its own rules (``Job``'s methods), at times given in seconds from START."""

    def __init__(
        self, name: str, user: str, scenes: int, created: float, pricing: Pricing = CLOUD, **request: Any
    ) -> None:
        self.pricing = pricing
        self.request = validate_request({"prompts": [f"{name}: scene {i + 1}" for i in range(scenes)], **request})
        self.job = Job.new(self.request, user, job_id=f"job-{name}", now=_at(created))
        self.job.cost = pricing.estimate(self.request)
        self.job.budget = Reservation(day=_at(created)[:10], seconds=self.request.duration_seconds)
        self.clock = created

    def tick(self, seconds: float) -> str:
        self.clock += seconds
        return _at(self.clock)

    def start(self, after: float = 1.25) -> _Run:
        self.job.move_to(Status.GENERATING, self.tick(after))
        return self

    def scene(self, index: int, seconds: float, *, broken_first: bool = False, quota_hits: int = 0) -> _Run:
        """Scene ``index`` made in ``seconds``; a first generation that the media check refused
        (billed, then generated again) if ``broken_first``; calls refused for quota before it."""
        for _ in range(quota_hits):
            self.job.note_quota_hit(index)
        self.job.start_segment(index, self.tick(0.5))
        billed = 0.0
        if broken_first:
            self.tick(seconds / 2)
            billed = self.pricing.scene_usd(self.request)
            self.job.start_segment(index, self.tick(0.5), billed_usd=billed)  # the retry
        self.job.complete_segment(
            index,
            f"jobs/{self.job.job_id}/segments/{index}.mp4",
            self.tick(seconds),
            self.pricing.scene_usd(self.request),
        )
        return self

    def stitch(self, seconds: float, quota_hits: int = 0) -> _Run:
        self.job.move_to(Status.STITCHING, self.tick(0.25))
        for _ in range(quota_hits):
            self.job.note_quota_hit(None)
        stitch_usd = self.pricing.stitch_usd(self.request, len(self.job.segments))
        self.job.complete(f"jobs/{self.job.job_id}/final/video.mp4", now=self.tick(seconds), stitch_usd=stitch_usd)
        return self

    def done(self) -> Job:
        self.job.updated_at = _at(self.clock)
        return self.job


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Job]:
    """The jobs `longform stats` is tested on (tests/stats_mix.py): real local runs."""
    return list(make_mix(tmp_path_factory.mktemp("mix") / "data").values())


@pytest.fixture(params=["designed", "local-runs"])
def jobs(request: pytest.FixtureRequest) -> list[Job]:
    """Two sets: documents written with exact designed timings and edge cases, and the jobs that
    real local runs made for the `longform stats` test."""
    if request.param == "local-runs":
        runs: list[Job] = request.getfixturevalue("local_runs")
        return runs
    return designed_jobs()


def designed_jobs() -> list[Job]:
    """A designed mix: completed jobs with different latencies, a scene made twice, a failure at a
    scene, at the stitch and before any step, a cancelled job, a resumed one, one still queued, quota
    hits, two users, local (estimated) prices and a job from before jobs had a cost."""
    made = [
        _Run("quick", "ana", 2, 0).start().scene(0, 31.5).scene(1, 29.75).stitch(4.5).done(),
        _Run("retried", "ana", 3, 600, seed=7, requestId="r-1")
        .start()
        .scene(0, 40.125)
        .scene(1, 44.0, broken_first=True, quota_hits=1)
        .scene(2, 38.5)
        .stitch(6.0, quota_hits=1)
        .done(),
        _Run("local", "ben", 3, 1200, LOCAL, segmentSeconds=6, generateAudio=False)
        .start(2.0)
        .scene(0, 12.0, quota_hits=2)
        .scene(1, 11.5)
        .scene(2, 13.25)
        .stitch(2.0)
        .done(),
    ]
    blocked = _Run("blocked", "ben", 3, 1800).start().scene(0, 35.0)
    blocked.job.start_segment(1, blocked.tick(0.5))
    blocked.job.fail_segment(1, "blocked by the safety filters")
    blocked.job.fail("scene 2: blocked by the safety filters", "segment-1-poll-0", blocked.tick(20.0))
    made.append(blocked.done())

    unstitched = _Run("unstitched", "ana", 2, 2400).start().scene(0, 30.0).scene(1, 31.0)
    unstitched.job.move_to(Status.STITCHING, unstitched.tick(0.25))
    unstitched.job.fail_stitch("the Transcoder job FAILED", "stitch-start", unstitched.tick(3.0))
    made.append(unstitched.done())

    cancelled = _Run("cancelled", "ben", 3, 3000).start().scene(0, 33.0)
    cancelled.job.start_segment(1, cancelled.tick(0.5))
    cancelled.job.move_to(Status.CANCELLED, cancelled.tick(10.0))
    made.append(cancelled.done())

    # Its start could not be sent: failed at no step. And from before jobs had a cost.
    unqueued = _Run("unqueued", "ben", 1, 3600)
    unqueued.job.cost = None
    unqueued.job.fail("could not queue the job", None, unqueued.tick(1.0))
    made.append(unqueued.done())

    # The second day: a job that failed, was resumed and completed; one still queued.
    resumed = _Run("resumed", "ana", 2, 86400 + 600).start().scene(0, 36.0)
    resumed.job.start_segment(1, resumed.tick(0.5))
    resumed.job.fail_segment(1, "the model was unavailable")
    resumed.job.fail("scene 2: the model was unavailable", "segment-1-start", resumed.tick(5.0))
    resumed.job.resume(resumed.tick(300.0))
    made.append(resumed.scene(1, 42.0).stitch(5.0).done())
    made.append(_Run("waiting", "ben", 2, 86400 + 900).done())
    return made


# -- the extension's changelog ------------------------------------------------------------------------


def stored_document(job: Job) -> dict[str, Any]:
    """The document FirestoreJobStore writes for ``job`` (taken from its ``create``)."""
    written: list[dict[str, Any]] = []

    class Document:
        def create(self, data: dict[str, Any]) -> None:
            written.append(data)

    class Collection:
        def document(self, _id: str) -> Document:
            return Document()

    class Client:
        def collection(self, _name: str) -> Collection:
            return Collection()

    FirestoreJobStore(Client()).create(job)  # type: ignore[arg-type]
    (document,) = written
    return document


def js_json(value: Any) -> str:
    """``value`` (a Firestore document as Python reads it) as the extension writes it to ``data``:
    Node's JSON.stringify of the document read by the Node SDK, so a float that is whole prints as
    an integer (``0``, not ``0.0``) and numbers take JavaScript's form (``1e-7``)."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{js_json(str(k))}:{js_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(js_json(v) for v in value) + "]"
    raise TypeError(f"not a Firestore value: {value!r}")


def _js_number(x: float) -> str:
    """ECMAScript Number::toString: the shortest digits (as Python's repr), laid out as JavaScript does."""
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "0"
    _, digits, exponent = Decimal(repr(abs(x))).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    k = len(ds)
    n = int(exponent) + len(digits)  # x = 0.ds × 10^n
    if k <= n <= 21:
        text = ds + "0" * (n - k)
    elif 0 < n <= 21:
        text = ds[:n] + "." + ds[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + ds
    else:
        text = ds[0] + ("." + ds[1:] if k > 1 else "") + f"e{'+' if n - 1 > 0 else '-'}{abs(n - 1)}"
    return ("-" if x < 0 else "") + text


def _history(job: Job) -> list[tuple[str, Job]]:
    """The writes that led to ``job``: created queued, then (unless still queued) generating, then as
    it is. Each earlier state would give other figures, so only the latest row may count."""
    created = Job(
        job_id=job.job_id,
        user_id=job.user_id,
        request=job.request,
        segments=[Segment(index=s.index, prompt=s.prompt) for s in job.segments],
        timings={"createdAt": job.timings["createdAt"]},
        budget=job.budget.model_copy(update={"returned_seconds": 0}) if job.budget else None,
        cost=job.cost.model_copy(update={"scenes_usd": 0.0, "stitch_usd": 0.0, "total_usd": 0.0}) if job.cost else None,
        updated_at=job.timings["createdAt"],
    )
    if job.status is Status.QUEUED:
        return [(job.timings["createdAt"], created)]
    running = job.model_copy(deep=True)
    running.status, running.error, running.error_step = Status.GENERATING, None, None
    for key in ("stitchStartedAt", "completedAt", "failedAt", "cancelledAt"):
        running.timings.pop(key, None)
    for segment in running.segments:
        if segment.status is not SegmentStatus.COMPLETED:
            segment.status = SegmentStatus.GENERATING if segment.attempts else SegmentStatus.PENDING
    last = max([job.updated_at or "", *job.timings.values()])
    middle = running.timings.get("startedAt", job.timings["createdAt"])
    return [(job.timings["createdAt"], created), (middle, running), (last, job)]


def changelog(jobs: list[Job], exclude_old_data: bool) -> list[dict[str, Any]]:
    """The extension's changelog rows for ``jobs``' writes, plus a backfill (the import script's
    IMPORT row, stamped when it ran, for the first job that got past queued) and a document
    created, finished and deleted (a copy of the first completed job, of another user)."""
    rows: list[dict[str, Any]] = []
    imported = next((job.job_id for job in jobs if job.status is not Status.QUEUED), None)

    def write(job_id: str, job: Job | None, operation: str, when: datetime, before: Job | None, event: str) -> None:
        name = f"projects/{PROJECT}/databases/(default)/documents/videoJobs/{job_id}"
        rows.append(
            {
                "timestamp": when,
                "event_id": event,
                "document_name": name,
                "operation": operation,
                "data": None if job is None else js_json(stored_document(job)),
                "old_data": None if before is None or exclude_old_data else js_json(stored_document(before)),
                "document_id": job_id,
            }
        )

    for job in jobs:
        previous: Job | None = None
        for step, (stamp, state) in enumerate(_history(job)):
            when = datetime.fromisoformat(stamp) + timedelta(microseconds=step)  # strictly after the last
            if step == 1 and job.job_id == imported:  # the backfill found it running (no event id)
                write(job.job_id, state, "IMPORT", when, None, "")
            else:
                operation = "CREATE" if step == 0 else "UPDATE"
                write(job.job_id, state, operation, when, previous, f"{job.job_id}-{step}")
            previous = state
    if not jobs:
        return rows
    # Deleted: a slow, expensive job of a third user, which must count nowhere.
    source = next((job for job in jobs if job.status is Status.COMPLETED), jobs[0])
    gone = source.model_copy(deep=True, update={"job_id": "job-deleted", "user_id": "cid"})
    if "completedAt" in gone.timings:
        gone.timings["completedAt"] = iso_time(datetime.fromisoformat(gone.timings["completedAt"]) + timedelta(hours=5))
    created = datetime.fromisoformat(gone.timings["createdAt"])
    write(gone.job_id, gone, "CREATE", created, None, "deleted-0")
    write(gone.job_id, gone, "UPDATE", created + timedelta(hours=6), gone, "deleted-1")
    write(gone.job_id, None, "DELETE", created + timedelta(hours=7), gone, "deleted-2")
    return rows


# -- DuckDB ------------------------------------------------------------------------------------------

DUCKDB_TYPES = {"TIMESTAMP": "TIMESTAMPTZ", "STRING": "VARCHAR"}


def read_env(path: Path) -> dict[str, str]:
    """An extensions/*.env file: ``KEY=value`` lines, ``#`` comments and blank lines, nothing else."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=([^#\r\n]*)", line)
        assert match, f"{path.name}:{number}: not KEY=value: {line!r}"
        assert match[1] not in values, f"{path.name}:{number}: {match[1]} set twice"
        values[match[1]] = match[2].strip()
    return values


def transpiled(bigquery_sql: str, group_by_aliases: bool = False) -> str:
    """``bigquery_sql`` in DuckDB's SQL, its tables named without a project (one database here).

    ``group_by_aliases``: apply BigQuery's rule that in GROUP BY "aliases in the SELECT clause
    override names in the FROM clause", which sqlglot does not carry over. The extension's latest
    view needs it: it selects ``t.document_name`` (as ``document_name``) from a join of two tables
    that both have a ``document_name`` and groups by ``document_name``, which DuckDB finds ambiguous."""
    (tree,) = sqlglot.parse(bigquery_sql, read="bigquery")
    assert tree is not None
    for table in tree.find_all(exp.Table):
        table.set("catalog", None)
    if group_by_aliases:
        for select in tree.find_all(exp.Select):
            group = select.args.get("group")
            outputs = {item.alias_or_name: item.unalias() for item in select.expressions}
            for column in list(group.expressions) if group else []:
                if isinstance(column, exp.Column) and not column.table and column.name in outputs:
                    column.replace(outputs[column.name].copy())
    return tree.sql(dialect="duckdb")


class Warehouse:
    """The dataset in DuckDB: the changelog table, the extension's latest view, and the queries."""

    def __init__(self, jobs: list[Job]) -> None:
        env = read_env(EXTENSIONS / f"{JOBS_INSTANCE}.env")
        view = json.loads(VIEWS.read_text())["instances"][JOBS_INSTANCE]
        self.db = duckdb.connect()
        self.db.execute("SET TimeZone = 'UTC'")
        dataset = env["DATASET_ID"]
        self.db.execute(f"CREATE SCHEMA {dataset}")
        columns = [(c["name"], DUCKDB_TYPES[c["type"]], c["mode"]) for c in view["changelogColumns"]]
        self.db.execute(
            f"CREATE TABLE {dataset}.{view['changelog']} ("
            + ", ".join(f"{name} {kind}{' NOT NULL' if mode == 'REQUIRED' else ''}" for name, kind, mode in columns)
            + ")"
        )
        rows = changelog(jobs, exclude_old_data=env.get("EXCLUDE_OLD_DATA") == "yes")
        names = [name for name, _, _ in columns]
        self.db.executemany(
            f"INSERT INTO {dataset}.{view['changelog']} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [[row[name] for name in names] for row in rows],
        )
        self.db.execute(
            f"CREATE VIEW {dataset}.{view['latest']} AS {transpiled(view['latestQuery'], group_by_aliases=True)}"
        )
        self.latest = f"{dataset}.{view['latest']}"

    def query(self, name: str, since: datetime | None = None, user: str | None = None) -> list[dict[str, Any]]:
        sql = transpiled((ANALYTICS / f"{name}.sql").read_text())
        cursor = self.db.execute(sql, {"since": since, "user": user})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, (_plain(v) for v in row), strict=True)) for row in cursor.fetchall()]


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


@pytest.fixture
def warehouse(jobs: list[Job]) -> Iterator[Warehouse]:
    made = Warehouse(jobs)
    yield made
    made.db.close()


# -- the queries give longform stats' figures ---------------------------------------------------------

QUERIES = {
    "jobs_by_status",
    "job_latency",
    "scene_latency",
    "stitch_latency",
    "scene_success",
    "stitch_success",
    "job_failure_rate",
    "failures_by_step",
    "quota_hits",
    "cost_by_user",
    "cost_total",
}


def _since(jobs: list[Job], choice: str | None) -> datetime | None:
    """None, or the creation of the middle job: about half the jobs are created at or after it."""
    if choice is None:
        return None
    created = sorted(job.timings["createdAt"] for job in jobs)
    return datetime.fromisoformat(created[len(created) // 2])


def _user(jobs: list[Job], choice: str | None) -> str | None:
    """None, the first or the last user (by id), or one who made no job."""
    users = sorted({job.user_id for job in jobs})
    return {None: None, "first": users[0], "last": users[-1], "nobody": "nobody"}[choice]


def figures(warehouse: Warehouse, since: datetime | None, user: str | None) -> dict[str, Any]:
    """Every query's answer, in the shape of ``Stats.to_json()``."""

    def one(name: str) -> dict[str, Any]:
        (row,) = warehouse.query(name, since, user)
        return row

    def latency(name: str) -> dict[str, Any]:
        return one(name)

    def rate(done: int, of: int, value: float | None) -> dict[str, Any]:
        return {"done": done, "of": of, "rate": value}

    by_status = {r["status"]: r["jobs"] for r in warehouse.query("jobs_by_status", since, user)}
    scenes, stitches, failed = one("scene_success"), one("stitch_success"), one("job_failure_rate")
    cost = one("cost_total")
    return {
        "jobs": sum(by_status.values()),
        "byStatus": by_status,
        "jobLatency": latency("job_latency"),
        "sceneLatency": latency("scene_latency"),
        "stitchLatency": latency("stitch_latency"),
        "scenesFirstAttempt": rate(scenes["first_attempt"], scenes["attempted"], scenes["first_attempt_rate"]),
        "scenesCompleted": rate(scenes["completed"], scenes["attempted"], scenes["completed_rate"]),
        "stitchesCompleted": rate(stitches["completed"], stitches["stitched"], stitches["rate"]),
        "jobsFailed": rate(failed["failed"], failed["ended"], failed["rate"]),
        "failuresByStep": {r["step_kind"]: r["failed"] for r in warehouse.query("failures_by_step", since, user)},
        "quotaHits": one("quota_hits")["quota_hits"],
        "costByUser": {r["user_id"]: r["cost_usd"] for r in warehouse.query("cost_by_user", since, user)},
        "costUsd": cost["cost_usd"],
        "estimated": cost["estimated"],
    }


def expected(jobs: list[Job], since: datetime | None, user: str | None) -> dict[str, Any]:
    stats = compute(jobs, iso_time(since) if since else None, user).to_json()
    del stats["since"], stats["user"]
    return stats


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal figures. Numbers are compared to within float dust, except the percentiles, which both
    sides round to the millisecond: a value exactly half-way may round either way (Python rounds the
    binary value half to even, BigQuery and DuckDB half away from zero), so they may differ by 1 ms."""
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key.endswith("Latency"):
            assert got[key]["count"] == value["count"], key
            for figure in ("p50", "p95", "max"):
                if value[figure] is None:
                    assert got[key][figure] is None, (key, figure)
                else:
                    tolerance = 1e-9 if figure == "max" else 0.001 + 1e-9
                    assert got[key][figure] == pytest.approx(value[figure], abs=tolerance), (key, figure, got[key])
        elif key == "costByUser" or isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-9), key
        elif isinstance(value, dict) and "rate" in value:
            assert (got[key]["done"], got[key]["of"]) == (value["done"], value["of"]), key
            if value["rate"] is None:
                assert got[key]["rate"] is None, key
            else:
                assert got[key]["rate"] == pytest.approx(value["rate"], abs=1e-6 + 1e-12), key
        else:
            assert got[key] == value, key


def test_there_is_a_query_for_each_figure_of_longform_stats() -> None:
    assert {p.stem for p in ANALYTICS.glob("*.sql")} == QUERIES


@pytest.mark.parametrize(
    ("since", "user"),
    [(None, None), ("middle", None), (None, "first"), (None, "last"), ("middle", "last"), (None, "nobody")],
    ids=["all", "since", "first-user", "last-user", "last-user-since", "nobody"],
)
def test_the_queries_give_the_figures_of_longform_stats(
    warehouse: Warehouse, jobs: list[Job], since: str | None, user: str | None
) -> None:
    moment, uid = _since(jobs, since), _user(jobs, user)
    assert_same(figures(warehouse, moment, uid), expected(jobs, moment, uid))


def test_the_designed_mix_has_what_the_figures_need(jobs: list[Job]) -> None:
    """The mix exercises every figure (so a query returning nothing would not pass unnoticed)."""
    stats = compute(jobs)
    assert stats.job_latency.count >= 3 and stats.scene_latency.count >= 3 and stats.stitch_latency.count >= 3
    assert stats.scenes_first_attempt.done < stats.scenes_completed.done < stats.scenes_completed.of
    assert 0 < stats.stitches_completed.done < stats.stitches_completed.of
    assert len(stats.failures_by_step) >= 2
    assert stats.quota_hits > 0 and stats.estimated and len(stats.cost_by_user) == 2
    assert {"completed", "failed", "cancelled"} <= stats.by_status.keys()
    since = _since(jobs, "middle")
    assert since is not None and 0 < compute(jobs, iso_time(since)).jobs < len(jobs)


def test_the_latest_view_holds_each_live_document_as_last_written(warehouse: Warehouse, jobs: list[Job]) -> None:
    changelog = warehouse.latest.replace("_raw_latest", "_raw_changelog")
    operations = {op for (op,) in warehouse.db.execute(f"SELECT DISTINCT operation FROM {changelog}").fetchall()}
    assert operations == {"CREATE", "UPDATE", "IMPORT", "DELETE"}
    rows = warehouse.db.execute(f"SELECT document_id, operation, data FROM {warehouse.latest}").fetchall()
    latest = {document_id: (operation, json.loads(data)) for document_id, operation, data in rows}
    assert latest.keys() == {job.job_id for job in jobs}  # the deleted document is gone
    for job in jobs:
        operation, data = latest[job.job_id]
        assert operation in ("CREATE", "UPDATE")  # the backfill's IMPORT was written over
        assert Job.from_json(data) == job


def test_the_queries_are_bigquery_sql_that_duckdb_runs_only_transpiled(warehouse: Warehouse) -> None:
    """Each query uses BigQuery's own functions (TIMESTAMP(), SAFE_CAST, SAFE_DIVIDE, TIMESTAMP_DIFF,
    JSON_QUERY_ARRAY, PERCENTILE_CONT … OVER (), UNNEST … WITH OFFSET…): as written it does not run on
    DuckDB, even with its names unquoted and its parameters in DuckDB's form; sqlglot's translation runs."""
    for name in sorted(QUERIES):
        sql = (ANALYTICS / f"{name}.sql").read_text()
        sqlglot.parse(sql, read="bigquery")  # BigQuery SQL, by sqlglot's reading
        as_is = sql.replace("`", "").replace("@since", "$since").replace("@user", "$user")
        with pytest.raises(duckdb.Error):
            warehouse.db.execute(as_is, {"since": None, "user": None})
        warehouse.query(name)


def test_the_queries_read_the_view_the_videojobs_instance_makes() -> None:
    env = read_env(EXTENSIONS / f"{JOBS_INSTANCE}.env")
    view = f"{env['DATASET_ID']}.{env['TABLE_ID']}_raw_latest"
    for name in sorted(QUERIES):
        tree = sqlglot.parse_one((ANALYTICS / f"{name}.sql").read_text(), read="bigquery")
        tables = {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}
        assert tables == {view}, name
        parameters = {p.name for p in tree.find_all(exp.Parameter)}
        assert parameters == {"since", "user"}, name


# -- the extension declaration -------------------------------------------------------------------------

# firebase-tools' rule for an instance id (extensionsHelper.promptForValidInstanceId).
INSTANCE_ID = re.compile(r"^[a-z][a-z\d\-]*[a-z\d]$")


def _declared() -> dict[str, str]:
    extensions: dict[str, str] = json.loads((ROOT / "firebase.json").read_text())["extensions"]
    return extensions


def test_firebase_json_declares_the_extension_at_the_version_of_its_params() -> None:
    params = json.loads(PARAMS.read_text())
    assert params["name"] == EXTENSION.split("/")[1]
    assert params["sourceUrl"] == "https://github.com/firebase/extensions/tree/master/firestore-bigquery-export"
    declared = _declared()
    assert declared.keys() == {JOBS_INSTANCE, USAGE_INSTANCE}
    for instance, ref in declared.items():
        assert ref == f"{EXTENSION}@{params['version']}", instance
        assert INSTANCE_ID.match(instance) and 6 < len(instance) < 45, instance
        assert (EXTENSIONS / f"{instance}.env").is_file(), instance
    assert {p.name for p in EXTENSIONS.glob("*.env")} == {f"{i}.env" for i in declared}


@pytest.mark.parametrize("instance", [JOBS_INSTANCE, USAGE_INSTANCE])
def test_each_instance_sets_params_the_extension_has_with_values_it_accepts(instance: str) -> None:
    spec = json.loads(PARAMS.read_text())["params"]
    env = read_env(EXTENSIONS / f"{instance}.env")
    assert env.keys() <= spec.keys(), f"not params of the extension: {sorted(env.keys() - spec.keys())}"
    required = {name for name, p in spec.items() if p["required"]}
    missing = {name for name in required if spec[name]["default"] is None} - env.keys()
    assert not missing, f"required params without a default: {sorted(missing)}"
    # As `firebase ext:install` writes them: every required param, defaults included.
    assert required <= env.keys(), f"required params left to their defaults: {sorted(required - env.keys())}"
    for name, value in env.items():
        param = spec[name]
        if param["options"] is not None:
            assert value in param["options"], f"{name}={value}: not one of {param['options']}"
        if param["validationRegex"]:
            assert re.search(param["validationRegex"], value), f"{name}={value}: not {param['validationRegex']}"


def test_the_instances_export_the_collections_the_job_store_writes() -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())  # names paths only
    store = FirestoreJobStore(client)
    ledger = store._ledger("a-user", "2026-11-20").path
    jobs, usage = (read_env(EXTENSIONS / f"{i}.env") for i in (JOBS_INSTANCE, USAGE_INSTANCE))
    assert jobs["COLLECTION_PATH"] == store.jobs.id
    assert usage["COLLECTION_PATH"] == "usage/{uid}/days" and ledger == "usage/a-user/days/2026-11-20"
    assert usage["WILDCARD_IDS"] == "true"  # the user id in path_params
    assert jobs["DATASET_ID"] == usage["DATASET_ID"] and jobs["TABLE_ID"] != usage["TABLE_ID"]


@pytest.mark.parametrize("instance", [JOBS_INSTANCE, USAGE_INSTANCE])
def test_the_views_fixture_is_for_the_params_of_each_instance(instance: str) -> None:
    env = read_env(EXTENSIONS / f"{instance}.env")
    view = json.loads(VIEWS.read_text())["instances"][instance]
    assert view["changelog"] == f"{env['TABLE_ID']}_raw_changelog" and view["latest"] == f"{env['TABLE_ID']}_raw_latest"
    tree = sqlglot.parse_one(view["latestQuery"], read="bigquery")
    tables = {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}  # not its CTE
    assert tables == {f"{env['DATASET_ID']}.{view['changelog']}"}
    wildcard = env.get("WILDCARD_IDS") == "true"
    assert ("path_params" in {c["name"] for c in view["changelogColumns"]}) == wildcard
    assert ("path_params" in view["latestQuery"]) == wildcard
    assert ("FIRST_VALUE" in view["latestQuery"]) == (env.get("USE_NEW_SNAPSHOT_QUERY_SYNTAX", "no") != "yes")


# The views fixture, made again by the change tracker the pinned fs-bq-schema-views depends on
# (node_modules, from package-lock.json): its latestConsistentSnapshotView and column schemas.
MAKE_VIEWS = r"""
const fs = require("fs");
const path = require("path");
const views = path.dirname(require.resolve("@firebaseextensions/fs-bq-schema-views/package.json"));
const tracker = path.dirname(
  require.resolve("@firebaseextensions/firestore-bigquery-change-tracker/package.json", { paths: [views] })
);
const { latestConsistentSnapshotView } = require(path.join(tracker, "lib/bigquery/snapshot.js"));
const schema = require(path.join(tracker, "lib/bigquery/schema.js"));
const input = JSON.parse(fs.readFileSync(0, "utf8"));
const instances = {};
for (const [instance, env] of input.instances) {
  const wildcard = env.WILDCARD_IDS === "true";
  const fields = [...schema.RawChangelogViewSchema.fields];
  const columns = [...schema.RawChangelogSchema.fields];
  if (wildcard) {
    fields.push(schema.documentPathParams);
    columns.push(schema.documentPathParams);
  }
  instances[instance] = {
    changelog: `${env.TABLE_ID}_raw_changelog`,
    changelogColumns: columns.map((f) => ({ name: f.name, type: f.type, mode: f.mode })),
    latest: `${env.TABLE_ID}_raw_latest`,
    latestQuery: latestConsistentSnapshotView({
      datasetId: env.DATASET_ID,
      tableName: `${env.TABLE_ID}_raw_changelog`,
      schema: { fields },
      bqProjectId: input.project,
      useLegacyQuery: env.USE_NEW_SNAPSHOT_QUERY_SYNTAX !== "yes",
    }).query,
  };
}
const tracked = require(path.join(tracker, "package.json")).version;
process.stdout.write(JSON.stringify({ tracker: tracked, instances }));
"""


def test_the_views_fixture_is_what_the_extensions_change_tracker_makes() -> None:
    node = shutil.which("node")
    package = ROOT / "node_modules" / "@firebaseextensions" / "fs-bq-schema-views"
    if node is None or not package.is_dir():
        unavailable("node and the npm devDependencies (npm ci) are needed to make the views again")
    request = {
        "project": PROJECT,
        "instances": [[i, read_env(EXTENSIONS / f"{i}.env")] for i in (JOBS_INSTANCE, USAGE_INSTANCE)],
    }
    made = subprocess.run(
        [node, "-e", MAKE_VIEWS], input=json.dumps(request), cwd=ROOT, capture_output=True, text=True, check=True
    )
    fresh = json.loads(made.stdout)
    committed = json.loads(VIEWS.read_text())
    assert fresh["instances"] == committed["instances"], f"write tracker {fresh['tracker']}'s output to {VIEWS}"


# -- the typed views' schema files ---------------------------------------------------------------------

# The field types fs-bq-schema-views 0.4.13 knows (src/schema/index.ts, FirestoreFieldType), by the
# JSON values each reads from a document.
SCHEMA_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "map": (dict,),
    "array": (list,),
    "timestamp": (),  # a Firestore Timestamp ({_seconds, _nanoseconds}): the jobs keep ISO 8601 text
    "geopoint": (),
    "reference": (),
    "null": (),
    "stringified_map": (dict, list),
}


def _check_schema(fields: list[dict[str, Any]], documents: list[dict[str, Any]], where: str = "") -> list[str]:
    """Each field is in some of ``documents``, with a value of its type wherever it is set; the
    columns the fields make (a map's fields prefixed with its name, as fs-bq-schema-views names them)."""
    columns: list[str] = []
    for field in fields:
        name, kind = field["name"], field["type"]
        path = f"{where}{name}"
        assert kind in SCHEMA_TYPES, f"{path}: {kind} is not a type of fs-bq-schema-views"
        values = [document[name] for document in documents if document.get(name) is not None]
        assert values, f"{path} is in none of the documents"
        for value in values:
            assert isinstance(value, SCHEMA_TYPES[kind]) and not (kind == "number" and isinstance(value, bool)), (
                f"{path}: {value!r} is not a {kind}"
            )
        if kind == "map":
            columns += [f"{name}_{column}" for column in _check_schema(field["fields"], values, f"{path}.")]
        else:
            columns.append(field.get("column_name", name))
    return columns


def _every_field_jobs() -> list[Job]:
    """Jobs that between them set every field the schema describes: a resumed, completed one with
    every optional field set, a failed one and a cancelled one."""
    run = _Run("full", "ana", 2, 0, seed=7, requestId="r-1", negativePrompt="blur").start().scene(0, 30.0)
    run.job.start_segment(1, run.tick(0.5))
    run.job.fail("scene 2: the model was unavailable", "segment-1-start", run.tick(5.0))
    run.job.resume(run.tick(60.0))
    job = run.scene(1, 31.0).stitch(4.0, quota_hits=1).done()
    job.stitch_job = "projects/p/locations/us-central1/jobs/j"
    job.stitch_error = "an earlier stitch failed"
    job.error, job.error_step = "kept for the schema check", "stitch-start"
    job.scene_media_removed_at = job.video_removed_at = run.tick(86400)
    failed = _Run("failed", "ben", 1, 0).start()
    failed.job.fail("the model was unavailable", "segment-0-start", failed.tick(3.0))
    cancelled = _Run("cancelled", "ben", 1, 0).start()
    cancelled.job.move_to(Status.CANCELLED, cancelled.tick(3.0))
    return [job, failed.done(), cancelled.done()]


def test_the_jobs_schema_describes_the_stored_job_document() -> None:
    schema = json.loads((ANALYTICS / "schemas" / "jobs.json").read_text())
    documents = [json.loads(js_json(stored_document(job))) for job in _every_field_jobs()]
    columns = _check_schema(schema["fields"], documents)
    assert len(columns) == len(set(columns)), "two fields make the same column"
    assert {"userId", "status", "errorStep", "timings_createdAt", "cost_totalUsd", "segments"} <= set(columns)


def test_the_ledger_schema_describes_the_usage_documents() -> None:
    schema = json.loads((ANALYTICS / "schemas" / "ledger.json").read_text())
    every = {name: 1 for name in Usage.model_fields} | {"day": "2026-11-20", "spent_usd": 0.75}
    document = Usage.model_validate(every).model_dump(by_alias=True)
    columns = _check_schema(schema["fields"], [document])
    assert sorted(columns) == sorted(document), "every field of the ledger, once"
