"""Edits through the service: what each edit would make and cost, what it refuses, and what it
writes (a new version, its reservation) — on the in-memory store, the engine only recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from longform.budget import SpendLimits
from longform.callable_protocol import callable_error
from longform.errors import BudgetExhausted, InvalidRequest, NotEditable, PermissionDenied
from longform.job import Job, SegmentStatus, Status
from longform.prices import PRICES, Pricing
from longform.service import MAX_JOB_BYTES, Caller, JobService
from tests.fakes import InMemoryBlobStore, InMemoryJobStore
from tests.unit.test_service import ANN, BOB, RecordingEngine, failed_job, made

PRICING = Pricing(PRICES, "veo-3.1-fast-generate-001", "transcoder", estimated=True)
SCENE_USD = PRICING.table.scene_usd("veo-3.1-fast-generate-001", 8, True)  # 8 s with audio: $1.20


def service(user_seconds: int = 600) -> tuple[JobService, InMemoryBlobStore]:
    blobs = InMemoryBlobStore()
    jobs = JobService(
        InMemoryJobStore(),
        RecordingEngine(),
        budget=SpendLimits(user_seconds),
        pricing=PRICING,
        blobs=lambda: blobs,
    )
    return jobs, blobs


def completed(scenes: int = 4, chain: bool = True, user_seconds: int = 600) -> tuple[JobService, str]:
    jobs, blobs = service(user_seconds)
    return jobs, made(jobs, blobs, ANN, scenes, chain=chain)


def scenes(*entries: int | dict[str, Any]) -> list[dict[str, Any]]:
    return [{"from": e} if isinstance(e, int) else e for e in entries]


def dry(jobs: JobService, job_id: str, *entries: int | dict[str, Any]) -> dict[str, Any]:
    answer = jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(*entries), "dryRun": True})
    plans: dict[str, Any] = answer["plans"]
    return plans


NEW_2 = {"from": 1, "prompt": "scene 1, from above"}


def test_a_changed_chained_scene_costs_one_scene_kept_or_the_rest_of_the_video_made_again() -> None:
    jobs, job_id = completed(4)
    plans = dry(jobs, job_id, 0, NEW_2, 2, 3)
    assert plans["keep"] | {"costUsd": None} == {
        "generate": [1],
        "reuse": [0, 2, 3],
        "cuts": [2],
        "seconds": 8,
        "costUsd": None,
        "changes": ["scene 2: new prompt"],
    }
    assert plans["keep"]["costUsd"] == pytest.approx(SCENE_USD)
    assert (plans["regenerate"]["generate"], plans["regenerate"]["cuts"]) == ([1, 2, 3], [])
    assert plans["regenerate"]["costUsd"] == pytest.approx(3 * SCENE_USD)
    job = jobs.jobs.get(job_id)  # a dry run writes nothing
    assert (job.version, job.status, jobs.usage(ANN)["usedSeconds"]) == (1, Status.COMPLETED, 32)


def test_an_applied_edit_makes_version_2_queued_with_its_cost_and_reservation_and_keeps_version_1() -> None:
    jobs, job_id = completed(4)
    before = jobs.jobs.get(job_id)
    answer = jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2, 3), "requestId": "e1"})
    assert (answer["status"], answer["version"], answer["plan"]["generate"]) == ("queued", 2, [1])
    assert answer["cost"]["estimateUsd"] == pytest.approx(SCENE_USD + PRICING.stitch_usd(before.video_request, 4))
    job = jobs.jobs.get(job_id)
    assert (job.version, job.status, job.progress, job.changes, job.continuity) == (
        2,
        Status.QUEUED,
        0,
        ["scene 2: new prompt"],
        "keep",
    )
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED, SegmentStatus.PENDING] + [
        SegmentStatus.COMPLETED
    ] * 2
    assert [s.uri for i, s in enumerate(job.segments) if i != 1] == [before.segments[i].uri for i in (0, 2, 3)]
    assert job.status_message() == "Queued..."
    version_1 = job.versions[0]
    assert (version_1.number, version_1.status, version_1.video_uri) == (1, Status.COMPLETED, before.video_uri)
    assert [s.uri for s in version_1.scenes] == [s.uri for s in before.segments]
    assert job.run_key == f"{job_id}-v2"
    assert jobs.engine.started == [job_id, job_id]  # type: ignore[attr-defined]
    assert jobs.usage(ANN)["usedSeconds"] == 32 + 8  # the one scene to make is reserved
    # the same requestId again: the version it made, nothing started twice
    again = jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2, 3), "requestId": "e1"})
    assert (again["version"], len(jobs.engine.started)) == (2, 2)  # type: ignore[attr-defined]


def test_generating_counts_only_the_scenes_the_edit_makes() -> None:
    jobs, job_id = completed(4)
    jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2, 3)})

    def run(job: Job) -> None:
        job.move_to(Status.GENERATING)
        assert job.status_message() == "Imaginating Scene... scene 1 of 1"
        job.start_segment(1)
        job.complete_segment(1, "mem://new.mp4", billed_usd=SCENE_USD)

    job = jobs.jobs.update(job_id, run)
    assert (job.progress, job.generated_seconds) == (90, 8)
    assert job.cost is not None and job.cost.scenes_usd == pytest.approx(SCENE_USD)
    assert jobs.usage(ANN)["usedSeconds"] == 40


def test_unchained_deletes_and_moves_make_nothing_and_an_inserted_scene_one() -> None:
    jobs, job_id = completed(4, chain=False)
    assert dry(jobs, job_id, 0, 1, 3)["keep"] | {"changes": None} == {
        "generate": [],
        "reuse": [0, 1, 2],
        "cuts": [],
        "seconds": 0,
        "costUsd": 0.0,
        "changes": None,
    }
    plans = dry(jobs, job_id, 3, 0, 1, 2)
    assert (plans["keep"]["generate"], plans["keep"]["changes"]) == ([], ["scenes reordered: 4, 1, 2, 3"])
    assert plans["regenerate"] == plans["keep"]  # unchained: no joins to choose about
    assert dry(jobs, job_id, 0, {"prompt": "a new one"}, 1, 2, 3)["keep"]["generate"] == [1]
    jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(3, 0, 1, 2)})
    job = jobs.jobs.update(job_id, lambda j: j.move_to(Status.GENERATING))
    assert job.status_message() == "Imaginating Scene... every scene reused"


def test_chained_a_move_is_a_new_join_cut_or_made_again_and_the_first_scene_needs_no_join() -> None:
    jobs, job_id = completed(3)
    plans = dry(jobs, job_id, 2, 0, 1)  # scene 3 first: it opens the video; scene 1 then follows it
    assert (plans["keep"]["generate"], plans["keep"]["cuts"]) == ([], [1])
    assert plans["regenerate"]["generate"] == [1, 2]
    plans = dry(jobs, job_id, 0, 2)  # scene 2 deleted: scene 3 now follows scene 1
    assert (plans["keep"]["cuts"], plans["regenerate"]["generate"]) == ([1], [1])


def test_a_scene_changed_back_reuses_the_file_an_earlier_version_made() -> None:
    jobs, job_id = completed(2, chain=False)
    jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, {"from": 1, "prompt": "other"})})
    jobs.jobs.update(job_id, _finish_version)
    plans = dry(jobs, job_id, 0, {"from": 1, "prompt": "scene 1"})  # version 1's prompt again
    assert (plans["keep"]["generate"], plans["keep"]["reuse"]) == ([], [0, 1])


def _finish_version(job: Job) -> None:
    job.move_to(Status.GENERATING)
    for segment in job.segments:
        if segment.status is SegmentStatus.PENDING:
            job.start_segment(segment.index)
            job.complete_segment(segment.index, f"mem://v{job.version}-{segment.index}.mp4")
    job.move_to(Status.STITCHING)
    job.complete(f"mem://v{job.version}.mp4")


def test_made_again_gets_a_new_seed_on_record_the_dry_run_showed_and_a_given_seed_is_kept() -> None:
    jobs, job_id = completed(2, chain=False)
    edit = scenes({"from": 0, "regenerate": True}, {"from": 1, "seed": 7})
    shown = dry(jobs, job_id, *edit)["keep"]["changes"]
    jobs.edit(ANN, {"jobId": job_id, "scenes": edit})
    job = jobs.jobs.get(job_id)
    assert job.changes == shown
    assert [s.status for s in job.segments] == [SegmentStatus.PENDING, SegmentStatus.PENDING]
    assert job.segments[0].seed is not None and job.segments[1].seed == 7
    assert job.changes == [f"scene 1: made again (seed {job.segments[0].seed})", "scene 2: seed 7"]


def test_a_failed_job_is_edited_its_made_scenes_reused_the_failed_one_made() -> None:
    jobs, _ = service()
    job_id = failed_job(jobs, ANN, scenes=3, made=1)
    plans = dry(jobs, job_id, 0, {"from": 1, "prompt": "scene 1, gentler"}, 2)
    assert plans["keep"]["generate"] == [1, 2]  # scene 3 was never made: nothing to keep


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"scenes": [{"from": 0}, {"from": 9}]}, "scenes[1].from", "must name a scene of version 1: 0 to 3"),
        ({"scenes": [{"from": 0}, {"from": 0}]}, "scenes[1].from", "scene 0 is already scenes[0]"),
        ({"scenes": [{"from": 0}, {"seed": 3}]}, "scenes[1].prompt", "is required for a new scene"),
        ({"scenes": [{"from": 0, "prompt": "  "}]}, "scenes[0].prompt", "must not be empty or whitespace only"),
        ({"scenes": [{"prompt": "x"}] * 51}, "scenes", "must have at most 50 scenes"),
        ({"scenes": []}, "scenes", "must have at least 1 scene"),
        ({"scenes": [{"from": 0}, {"from": 1}, {"from": 2}, {"from": 3}]}, "scenes", "the edit changes nothing"),
        ({"scenes": [{"from": -1}]}, "scenes[0].from", "must be at least 0"),
        ({"scenes": [{"from": "0"}]}, "scenes[0].from", "must be an integer"),
        ({"scenes": ["x"]}, "scenes[0]", "must be an object"),
        ({"scenes": [{"from": 0}], "continuity": "smooth"}, "continuity", "must be one of 'keep' or 'regenerate'"),
        ({"scenes": [{"from": 0}], "extra": 1}, "extra", "is not a known field"),
    ],
)
def test_a_bad_edit_names_its_field_and_rule_and_writes_nothing(data: dict[str, Any], field: str, rule: str) -> None:
    jobs, job_id = completed(4)
    before = jobs.jobs.get(job_id)
    with pytest.raises(InvalidRequest) as caught:
        jobs.edit(ANN, {"jobId": job_id} | data)
    assert caught.value.field == field and rule in caught.value.rule
    assert callable_error(caught.value).status == "INVALID_ARGUMENT"
    assert jobs.jobs.get(job_id) == before


def test_only_the_signed_in_owner_edits_and_only_a_job_that_has_ended() -> None:
    jobs, job_id = completed(2)
    edit = {"jobId": job_id, "scenes": scenes(1, 0)}
    with pytest.raises(PermissionDenied):
        jobs.edit(BOB, edit)
    with pytest.raises(PermissionDenied, match="sign in with an account"):
        jobs.edit(Caller("ann", anonymous=True), edit)
    running = jobs.trigger(ANN, {"prompts": ["a", "b"]})["jobId"]
    with pytest.raises(NotEditable, match="it is queued") as caught:
        jobs.edit(ANN, {"jobId": running, "scenes": scenes(1, 0)})
    assert callable_error(caught.value).status == "FAILED_PRECONDITION"
    jobs.edit(ANN, edit)
    with pytest.raises(NotEditable):  # version 2 is running now
        jobs.edit(ANN, edit)


def test_an_edit_counts_against_the_days_budget_and_over_it_writes_nothing() -> None:
    jobs, job_id = completed(4, user_seconds=40)  # 32 s used
    with pytest.raises(BudgetExhausted, match="needs 24 s"):
        jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2, 3), "continuity": "regenerate"} | {})
    assert jobs.jobs.get(job_id).version == 1
    assert jobs.usage(ANN)["usedSeconds"] == 32
    jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2, 3)})  # 8 s: fits
    assert jobs.usage(ANN)["usedSeconds"] == 40


def test_a_failed_or_cancelled_version_gives_back_only_the_seconds_it_did_not_make() -> None:
    jobs, job_id = completed(4)
    jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2, 3), "continuity": "regenerate"})
    assert jobs.usage(ANN)["usedSeconds"] == 32 + 24

    def fail_after_one(job: Job) -> None:
        job.move_to(Status.GENERATING)
        job.start_segment(1)
        job.complete_segment(1, "mem://new.mp4")
        job.fail("blocked", "segment-2-start")

    jobs.jobs.update(job_id, fail_after_one)
    assert jobs.usage(ANN)["usedSeconds"] == 32 + 8


def test_an_edit_that_would_overfill_the_jobs_record_is_refused_and_the_job_stays_as_it_was() -> None:
    jobs, _blobs = service(user_seconds=100_000)
    long = "a long scene description " * 79  # 1,975 characters, near the 2,000 allowed
    job_id = jobs.trigger(ANN, {"prompts": [f"{i} {long}" for i in range(50)], "chain": False})["jobId"]
    jobs.jobs.update(job_id, _finish_version)
    refused = None
    for n in range(1, 20):
        try:
            jobs.edit(ANN, {"jobId": job_id, "scenes": [{"from": 0, "seed": n}, *scenes(*range(1, 50))]})
        except NotEditable as exc:
            refused = exc
            break
        jobs.jobs.update(job_id, _finish_version)
    assert refused is not None and "start a new job from this version" in str(refused)
    job = jobs.jobs.get(job_id)
    assert job.status is Status.COMPLETED and len(json.dumps(job.to_json())) <= MAX_JOB_BYTES
    assert len(job.versions) == n - 1 >= 2  # the edits that fitted were made


def test_a_failed_version_resumes_as_a_run_of_its_own_keeping_what_it_reused_and_made() -> None:
    jobs, job_id = completed(3)
    jobs.edit(ANN, {"jobId": job_id, "scenes": scenes(0, NEW_2, 2), "continuity": "regenerate"})

    def fail_at_scene_3(job: Job) -> None:
        job.move_to(Status.GENERATING)
        job.start_segment(1)
        job.complete_segment(1, "mem://v2-1.mp4")
        job.start_segment(2)
        job.fail_segment(2, "blocked")
        job.fail("blocked", "segment-2-poll-0")

    jobs.jobs.update(job_id, fail_at_scene_3)
    jobs.resume(ANN, {"jobId": job_id})
    job = jobs.jobs.get(job_id)
    assert (job.version, job.run_key, job.status) == (2, f"{job_id}-v2-r1", Status.GENERATING)
    assert [s.status for s in job.segments] == [SegmentStatus.COMPLETED, SegmentStatus.COMPLETED, SegmentStatus.PENDING]
    assert [s.reused for s in job.segments] == [True, False, False]
    assert jobs.engine.started[-1] == job_id  # type: ignore[attr-defined]
