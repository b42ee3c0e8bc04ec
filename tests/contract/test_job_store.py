"""One contract for every JobStore: the SQLite store, the in-memory fake and the Firestore store (against
the emulator, each test in a collection of its own)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtools.firestore_emulator import FirestoreEmulator
from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.adapters.sqlite import Database
from longform.adapters.sqlite_job_store import SqliteJobStore
from longform.budget import PROJECT, SpendLimits
from longform.errors import (
    BudgetExhausted,
    IllegalTransition,
    JobNotFound,
    LongformError,
    TooManyActiveJobs,
    TransientError,
)
from longform.job import Job, Reservation, Status, iso_time
from longform.ports import JobStore
from longform.request import validate_request
from tests.conftest import PRICING
from tests.fakes import InMemoryJobStore


@pytest.fixture(params=["sqlite", "memory", "firestore"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        yield SqliteJobStore(Database(tmp_path / "jobs.db"))
    elif request.param == "firestore":
        yield from firestore_store(request.getfixturevalue("firestore_emulator"))
    else:
        yield InMemoryJobStore()


def firestore_store(emulator: FirestoreEmulator) -> Iterator[FirestoreJobStore]:
    client = emulator.client()
    unique = uuid.uuid4().hex[:12]
    yield FirestoreJobStore(
        client, f"videoJobs-{unique}", usage=f"usage-{unique}", project_usage=f"projectUsage-{unique}"
    )
    client.close()


def make_job(user: str = "u1", created: str = "2026-11-25T10:00:00.000Z", prompts: int = 2) -> Job:
    request = validate_request({"prompts": [f"p{i}" for i in range(prompts)]})
    return Job.new(request, user, now=created)


def make_job_with_id(job_id: str) -> Job:
    return Job.new(validate_request({"prompts": ["other"]}), "u1", job_id=job_id)


def test_a_created_job_reads_back_equal(store: JobStore) -> None:
    job = make_job()
    store.create(job)
    assert store.get(job.job_id) == job


def test_creating_the_same_id_twice_is_refused(store: JobStore) -> None:
    job = make_job()
    store.create(job)
    with pytest.raises(LongformError):
        store.create(job)


def test_submit_creates_once_and_returns_the_stored_job_on_a_retry(store: JobStore) -> None:
    job = make_job()
    assert store.submit(job) == (job, True)
    store.update(job.job_id, lambda j: j.move_to(Status.GENERATING))
    again, created = store.submit(make_job_with_id(job.job_id))
    assert not created
    assert again.status is Status.GENERATING and again.segments == job.segments


def test_submit_refuses_a_user_over_the_active_job_limit(store: JobStore) -> None:
    first, second = make_job("u1"), make_job("u1")
    store.submit(first, max_active=2)
    store.submit(second, max_active=2)
    store.submit(make_job("u2"), max_active=2)  # another user's jobs do not count
    with pytest.raises(TooManyActiveJobs):
        store.submit(make_job("u1"), max_active=2)
    assert len(store.list(user_id="u1")) == 2
    store.update(first.job_id, lambda j: j.move_to(Status.CANCELLED))  # a final job frees a place
    assert store.submit(make_job("u1"), max_active=2)[1]
    assert store.submit(first, max_active=2) == (store.get(first.job_id), False)  # a retry is never refused


def test_concurrent_submits_never_exceed_the_limit(store: JobStore) -> None:
    created: list[bool] = []

    def submit() -> None:
        try:
            created.append(store.submit(make_job("busy"), max_active=3)[1])
        except TooManyActiveJobs:
            created.append(False)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 10  # every submit answered: created or refused, no other error
    assert created.count(True) == 3
    assert len(store.list(user_id="busy")) == 3


# -- the daily budget -------------------------------------------------------------------------

DAY = "2026-11-29"


def reserving(seconds: int, user: str = "spender", day: str = DAY, prompts: int = 1) -> Job:
    job = make_job(user, prompts=prompts)
    job.budget = Reservation(day=day, seconds=seconds)
    return job


def test_a_job_reserves_its_seconds_for_its_user_and_the_project_on_its_day(store: JobStore) -> None:
    store.submit(reserving(16), limits=SpendLimits(600, 3600))
    store.submit(reserving(8, user="other"), limits=SpendLimits(600, 3600))
    store.submit(reserving(8, day="2026-11-30"))
    mine = store.usage("spender", DAY)
    assert (mine.day, mine.seconds, mine.returned_seconds, mine.jobs, mine.limit_seconds) == (DAY, 16, 0, 1, 600)
    assert (store.usage(PROJECT, DAY).seconds, store.usage(PROJECT, DAY).jobs) == (24, 2)
    assert store.usage("spender", "2026-11-30").seconds == 8
    assert store.usage("nobody", DAY).seconds == 0


@pytest.mark.parametrize(("limits", "scope"), [(SpendLimits(20, 3600), "user"), (SpendLimits(600, 20), "project")])
def test_a_job_that_does_not_fit_is_refused_and_nothing_is_written(
    store: JobStore, limits: SpendLimits, scope: str
) -> None:
    store.submit(reserving(16), limits=limits)
    late = reserving(8)
    with pytest.raises(BudgetExhausted) as caught:
        store.submit(late, limits=limits)
    assert (caught.value.scope, caught.value.limit, caught.value.remaining, caught.value.asked) == (scope, 20, 4, 8)
    with pytest.raises(JobNotFound):
        store.get(late.job_id)
    assert store.usage("spender", DAY).seconds == 16 and store.usage(PROJECT, DAY).seconds == 16
    store.submit(reserving(4), limits=limits)  # what still fits is admitted
    assert store.usage("spender", DAY).seconds == 20


def test_a_failed_or_cancelled_job_gives_back_what_it_did_not_make_once(store: JobStore) -> None:
    job = reserving(24, prompts=3)  # 3 scenes × 8 s
    store.submit(job)

    def one_scene_made(j: Job) -> None:
        j.move_to(Status.GENERATING)
        j.start_segment(0)
        j.complete_segment(0, "file:///0.mp4")

    store.update(job.job_id, one_scene_made)
    cancelled = store.update(job.job_id, lambda j: j.move_to(Status.CANCELLED))
    assert cancelled.budget is not None and cancelled.budget.returned_seconds == 16
    store.update(job.job_id, lambda j: setattr(j, "error", "a later write"))  # returns nothing more
    for owner in ("spender", PROJECT):
        usage = store.usage(owner, DAY)
        assert (usage.seconds, usage.returned_seconds) == (8, 16)


def test_a_resume_books_back_what_the_job_returned_within_the_limits_or_not_at_all(store: JobStore) -> None:
    job = reserving(24, prompts=3)
    store.submit(job)
    store.update(job.job_id, lambda j: j.move_to(Status.FAILED))  # nothing made: 24 s returned
    store.submit(reserving(8))
    assert store.usage("spender", DAY).seconds == 8
    with pytest.raises(BudgetExhausted):
        store.update(job.job_id, Job.resume, limits=SpendLimits(30, 3600))  # 8 + 24 > 30
    assert store.get(job.job_id).status is Status.FAILED and store.usage("spender", DAY).seconds == 8
    resumed = store.update(job.job_id, Job.resume, limits=SpendLimits(32, 3600))
    assert resumed.status is Status.GENERATING
    for owner in ("spender", PROJECT):
        usage = store.usage(owner, DAY)
        assert (usage.seconds, usage.returned_seconds) == (32, 0)


def test_each_write_books_what_the_job_generated_spent_and_how_it_ended_on_its_day(store: JobStore) -> None:
    """The usage beside the budget: video generated (each billed generation), dollars, jobs
    completed, failed and cancelled, quota hits — booked once each, with the write that made them."""
    priced = reserving(24, prompts=3)
    priced.cost = PRICING.estimate(priced.video_request)
    store.submit(priced)

    def made_with_a_retry(j: Job) -> None:
        j.move_to(Status.GENERATING)
        j.note_quota_hit(0)
        j.note_quota_hit(0)
        j.start_segment(0)
        j.start_segment(0, billed_usd=1.2)  # the first video failed the check: paid for
        j.complete_segment(0, "file:///0.mp4", billed_usd=1.2)

    store.update(priced.job_id, made_with_a_retry)
    store.update(priced.job_id, lambda j: j.fail("scene 2 was blocked", "segment-1-poll-0"))
    store.update(priced.job_id, lambda j: setattr(j, "error", "a later write"))  # books nothing more
    resumed = store.update(priced.job_id, Job.resume, limits=SpendLimits(600, 3600))
    assert resumed.status is Status.GENERATING
    store.update(priced.job_id, lambda j: j.move_to(Status.CANCELLED))
    other = reserving(8)
    store.submit(other)
    store.update(other.job_id, lambda j: j.move_to(Status.GENERATING))

    for owner in ("spender", PROJECT):
        usage = store.usage(owner, DAY)
        assert (usage.generated_seconds, usage.spent_usd, usage.quota_hits) == (16, 2.4, 2)
        assert (usage.completed, usage.failed, usage.cancelled, usage.jobs) == (0, 1, 1, 2)
        assert (usage.seconds, usage.returned_seconds) == (8 + 8, 16)  # one scene made of three, and the other


def test_each_write_logs_once_the_scenes_it_completed_and_the_end_of_the_job(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The lines log-based metrics count (job_events): one per scene made, one per job ended, with
    their latency and cost; a write that changes neither logs nothing."""
    job = reserving(24, prompts=3)
    job.cost = PRICING.estimate(job.video_request)
    store.submit(job)
    caplog.set_level(logging.INFO, logger="longform.events")

    def made(j: Job) -> None:
        j.move_to(Status.GENERATING)
        j.start_segment(0, now="2026-11-29T10:00:00.000Z")
        j.complete_segment(0, "file:///0.mp4", billed_usd=1.2, now="2026-11-29T10:01:30.500Z")

    store.update(job.job_id, made)
    store.update(job.job_id, lambda j: setattr(j, "error", "a write that makes nothing"))
    store.update(job.job_id, lambda j: j.fail("scene 2 was blocked", "segment-1-poll-0"))
    store.update(job.job_id, Job.resume, limits=SpendLimits(600, 3600))  # the transactional write
    store.update(job.job_id, lambda j: j.move_to(Status.CANCELLED), limits=SpendLimits(600, 3600))

    events = [(r.fields["event"], r.fields) for r in caplog.records if hasattr(r, "fields")]  # type: ignore[attr-defined]
    assert [name for name, _ in events] == ["scene_completed", "job_finished", "job_finished"]
    scene, failed, cancelled = (f for _, f in events)
    assert (scene["jobId"], scene["userId"], scene["scene"]) == (job.job_id, "spender", 1)
    assert (scene["latencySeconds"], scene["costUsd"], scene["attempts"]) == (90.5, 1.2, 1)
    assert (failed["status"], failed["errorStep"], failed["costUsd"]) == ("failed", "segment-1-poll-0", 1.2)
    assert cancelled["status"] == "cancelled" and cancelled["latencySeconds"] > 0


def test_concurrent_submits_never_overspend(store: JobStore) -> None:
    outcomes: list[str] = []

    def submit() -> None:
        job = reserving(8)
        for _ in range(5):  # as a client does when told UNAVAILABLE (contention outlasting the store's retries)
            try:
                store.submit(job, limits=SpendLimits(24, 3600))
                outcomes.append("admitted")
                return
            except BudgetExhausted:
                outcomes.append("refused")
                return
            except TransientError:
                continue

    # Six at once against a budget for three. (With ten, the Firestore emulator now and then leaves
    # a transaction's commit waiting on another's lock for its whole 60 s deadline, several times
    # over: its locks upgrade without the wound-wait that resolves this in production.)
    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted"] * 3 + ["refused"] * 3
    assert store.usage("spender", DAY).seconds == 24 and len(store.list(user_id="spender")) == 3


# -- retention and deletion ---------------------------------------------------------------------


def ended(store: JobStore, created: str, end: Status) -> Job:
    job = make_job("keeper", created=created)
    store.create(job)
    if end is Status.COMPLETED:

        def complete(j: Job) -> None:
            j.move_to(Status.GENERATING)
            for i in range(len(j.segments)):
                j.start_segment(i)
                j.complete_segment(i, f"file:///{i}.mp4")
            j.move_to(Status.STITCHING)
            j.complete("file:///final.mp4")

        return store.update(job.job_id, complete)
    return store.update(job.job_id, lambda j: j.move_to(end))


def test_finished_before_finds_old_finished_jobs_still_holding_media_oldest_first(store: JobStore) -> None:
    old_done = ended(store, "2026-10-01T00:00:00.000Z", Status.COMPLETED)
    old_failed = ended(store, "2026-10-02T00:00:00.000Z", Status.FAILED)
    ended(store, "2026-11-28T00:00:00.000Z", Status.COMPLETED)  # too new
    running = make_job("keeper", created="2026-09-01T00:00:00.000Z")
    store.create(running)  # not finished
    cutoff = "2026-11-01T00:00:00.000Z"

    assert [j.job_id for j in store.finished_before(cutoff)] == [old_done.job_id, old_failed.job_id]
    assert [j.job_id for j in store.finished_before(cutoff, holding="video")] == [old_done.job_id]
    store.update(old_done.job_id, lambda j: j.remove_scene_media())
    assert [j.job_id for j in store.finished_before(cutoff)] == [old_failed.job_id]
    assert [j.job_id for j in store.finished_before(cutoff, holding="video")] == [old_done.job_id]
    store.update(old_done.job_id, lambda j: j.remove_video())
    assert store.finished_before(cutoff, holding="video") == []
    assert store.finished_before(cutoff, limit=1)[0].job_id == old_failed.job_id


def test_stale_finds_jobs_of_a_status_whose_last_write_is_older_than_asked(store: JobStore) -> None:
    quiet = make_job("keeper", created="2026-01-01T08:00:00.000Z")
    busy = make_job("keeper", created="2026-01-01T08:00:00.000Z")
    for job in (quiet, busy):
        store.create(job)
    store.update(busy.job_id, lambda j: j.move_to(Status.GENERATING))  # written now: not stale
    cutoff = iso_time(datetime.now(UTC) - timedelta(minutes=1))
    assert [j.job_id for j in store.stale("queued", cutoff)] == [quiet.job_id]
    assert store.stale("generating", cutoff) == []
    assert [j.job_id for j in store.stale("generating", "2099-01-01T00:00:00.000Z")] == [busy.job_id]


def test_a_deleted_job_is_gone(store: JobStore) -> None:
    job = make_job()
    store.create(job)
    store.delete(job.job_id)
    store.delete(job.job_id)  # already gone is fine
    with pytest.raises(JobNotFound):
        store.get(job.job_id)


def test_unknown_jobs_are_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        store.get("nope")
    with pytest.raises(JobNotFound):
        store.update("nope", lambda job: None)


def test_update_applies_the_change_and_returns_the_new_job(store: JobStore) -> None:
    job = make_job()
    store.create(job)
    updated = store.update(job.job_id, lambda j: j.move_to(Status.GENERATING))
    assert updated.status is Status.GENERATING
    assert store.get(job.job_id).status is Status.GENERATING


def test_a_change_that_raises_writes_nothing(store: JobStore) -> None:
    job = make_job()
    store.create(job)

    def bad(j: Job) -> None:
        j.progress = 50
        raise IllegalTransition("no")

    with pytest.raises(IllegalTransition):
        store.update(job.job_id, bad)
    assert store.get(job.job_id) == job


def test_list_is_newest_first_and_filters_by_user(store: JobStore) -> None:
    old = make_job("u1", "2026-11-25T10:00:00.000Z")
    new = make_job("u1", "2026-11-25T11:00:00.000Z")
    other = make_job("u2", "2026-11-25T12:00:00.000Z")
    for job in (old, new, other):
        store.create(job)
    assert [j.job_id for j in store.list()] == [other.job_id, new.job_id, old.job_id]
    assert [j.job_id for j in store.list(user_id="u1")] == [new.job_id, old.job_id]
    assert [j.job_id for j in store.list(limit=1)] == [other.job_id]


def test_list_breaks_ties_by_job_id(store: JobStore) -> None:
    same_time = [make_job_with_id(job_id) for job_id in ("b", "c", "a")]
    for job in same_time:
        job.timings["createdAt"] = "2026-11-25T10:00:00.000Z"
        store.create(job)
    assert [j.job_id for j in store.list()] == ["a", "b", "c"]


def test_ids_starting_with_finds_the_users_own_jobs_in_id_order(store: JobStore) -> None:
    for job_id, user in (("abc2", "u1"), ("abc1", "u1"), ("abd0", "u1"), ("abc3", "u2"), ("ab", "u1")):
        job = make_job_with_id(job_id)
        job.user_id = user
        store.create(job)
    assert store.ids_starting_with("abc", "u1") == ["abc1", "abc2"]
    assert store.ids_starting_with("abc", "u1", limit=1) == ["abc1"]
    assert store.ids_starting_with("abc3", "u1") == []  # another user's
    assert store.ids_starting_with("abd", "u1") == ["abd0"]
    assert store.ids_starting_with("ab", "u1", limit=10) == ["ab", "abc1", "abc2", "abd0"]


def test_concurrent_updates_are_not_lost(store: JobStore) -> None:
    job = make_job(prompts=1)
    store.create(job)
    store.update(job.job_id, lambda j: j.move_to(Status.GENERATING))

    def bump(j: Job) -> None:
        j.segments[0].attempts += 1

    def worker() -> None:
        for _ in range(25):
            store.update(job.job_id, bump)

    threads: list[threading.Thread] = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(job.job_id).segments[0].attempts == 200


def test_sqlite_store_is_shared_by_two_store_objects_on_one_file(tmp_path: Path) -> None:
    first = SqliteJobStore(Database(tmp_path / "jobs.db"))
    second = SqliteJobStore(Database(tmp_path / "jobs.db"))
    job = make_job()
    first.create(job)
    second.update(job.job_id, lambda j: j.move_to(Status.GENERATING))
    assert first.get(job.job_id).status is Status.GENERATING


def test_a_data_dir_of_the_first_schema_gains_its_new_columns_when_many_open_it_at_once(tmp_path: Path) -> None:
    """Processes that open an old data dir together (a `longform resume` beside a `longform list`)
    each see the columns missing; only one may add them."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE usage (owner TEXT NOT NULL, day TEXT NOT NULL, seconds INTEGER NOT NULL DEFAULT 0, "
            "returned_seconds INTEGER NOT NULL DEFAULT 0, jobs INTEGER NOT NULL DEFAULT 0, limit_seconds INTEGER, "
            "PRIMARY KEY (owner, day))"
        )
    errors: list[BaseException] = []
    gate = threading.Barrier(8)

    def open_it() -> None:
        gate.wait()
        try:
            SqliteJobStore(Database(path)).list()
        except BaseException as exc:  # collected, and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(usage)")]
    assert "generated_seconds" in columns and len(columns) == len(set(columns))


@pytest.fixture
def firestore(firestore_emulator: FirestoreEmulator) -> Iterator[FirestoreJobStore]:
    yield from firestore_store(firestore_emulator)


def test_firestore_store_keeps_each_job_as_its_camel_case_json(firestore: FirestoreJobStore) -> None:
    job, started = make_job(), "2026-11-25T10:01:00.000Z"
    firestore.create(job)
    firestore.update(job.job_id, lambda j: j.move_to(Status.GENERATING, now=started))
    job.move_to(Status.GENERATING, now=started)
    document = firestore.jobs.document(job.job_id).get()
    assert document.id == job.job_id
    stored = document.to_dict()
    assert stored["updatedAt"] > job.timings["createdAt"]  # stamped by the write
    assert {**stored, "updatedAt": None} == {**job.to_json(), "updatedAt": None}
    assert document.to_dict()["timings"] == {"createdAt": "2026-11-25T10:00:00.000Z", "startedAt": started}


def test_firestore_store_does_not_rewrite_a_job_the_change_left_as_it_was(firestore: FirestoreJobStore) -> None:
    job = make_job()
    firestore.create(job)
    written = firestore.jobs.document(job.job_id).get().update_time
    firestore.update(job.job_id, lambda j: j.move_to(Status.QUEUED))  # a replayed step: no change
    assert firestore.jobs.document(job.job_id).get().update_time == written
