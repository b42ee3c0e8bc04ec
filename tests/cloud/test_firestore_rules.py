"""The security rules in firestore.rules, enforced by the emulator on REST requests made as a signed-in
user (an unsigned ID token) or as nobody: a user reads their own jobs and nothing else; no client writes.
Jobs are seeded with admin rights through the FirestoreJobStore, as the functions write them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.firestore_emulator import RULES, FirestoreEmulator, unsigned_id_token
from longform.adapters.firestore_job_store import FirestoreJobStore
from longform.job import Job, Reservation
from longform.request import validate_request

FORBIDDEN = 403


@pytest.fixture
def jobs(firestore_emulator: FirestoreEmulator) -> Iterator[FirestoreJobStore]:
    client = firestore_emulator.client()
    yield FirestoreJobStore(client)  # the real collection name: the rules match videoJobs
    client.close()


@pytest.fixture
def job(jobs: FirestoreJobStore) -> Job:
    job = Job.new(validate_request({"prompts": ["a lighthouse at night"]}), f"owner-{uuid.uuid4().hex}")
    jobs.create(job)
    return job


@pytest.fixture
def rest(firestore_emulator: FirestoreEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=firestore_emulator.documents_url, timeout=10) as client:
        yield client


def signed_in(uid: str, emulator: FirestoreEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {unsigned_id_token(uid, emulator.project)}"}


def run_query(rest: httpx.Client, emulator: FirestoreEmulator, uid: str, user_id: str | None) -> httpx.Response:
    """A runQuery over videoJobs as ``uid``, filtered on ``userId == user_id`` unless that is None."""
    url = f"{emulator.documents_url}:runQuery"  # a sibling of documents/, not a path under it
    return rest.post(url, json=jobs_query(user_id), headers=signed_in(uid, emulator))


def jobs_query(user_id: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"from": [{"collectionId": "videoJobs"}]}
    if user_id is not None:
        query["where"] = {
            "fieldFilter": {"field": {"fieldPath": "userId"}, "op": "EQUAL", "value": {"stringValue": user_id}}
        }
    return {"structuredQuery": query}


def test_the_emulator_enforces_the_repository_rules(firestore_emulator: FirestoreEmulator) -> None:
    # Without --rules the emulator serves OPEN_RULES (allow everything) and every denial below would pass.
    url = f"http://{firestore_emulator.host}/emulator/v1/projects/{firestore_emulator.project}:securityRules"
    (loaded,) = httpx.get(url, timeout=10).json()["rules"]["files"]
    assert loaded["content"] == RULES.read_text()


def test_the_owner_reads_their_job(rest: httpx.Client, job: Job, firestore_emulator: FirestoreEmulator) -> None:
    response = rest.get(f"videoJobs/{job.job_id}", headers=signed_in(job.user_id, firestore_emulator))
    assert response.status_code == 200, response.text
    fields = response.json()["fields"]
    assert fields["userId"] == {"stringValue": job.user_id}
    assert fields["status"] == {"stringValue": "queued"}


def test_another_user_cannot_read_the_job(rest: httpx.Client, job: Job, firestore_emulator: FirestoreEmulator) -> None:
    response = rest.get(f"videoJobs/{job.job_id}", headers=signed_in("someone-else", firestore_emulator))
    assert response.status_code == FORBIDDEN, response.text


def test_a_request_without_a_token_cannot_read_the_job(rest: httpx.Client, job: Job) -> None:
    assert rest.get(f"videoJobs/{job.job_id}").status_code == FORBIDDEN


@pytest.mark.parametrize("write", ["create", "update", "delete"])
def test_the_owner_cannot_write_jobs(
    write: str, rest: httpx.Client, job: Job, jobs: FirestoreJobStore, firestore_emulator: FirestoreEmulator
) -> None:
    headers = signed_in(job.user_id, firestore_emulator)
    own_fields = {"userId": {"stringValue": job.user_id}, "status": {"stringValue": "completed"}}
    new_id = uuid.uuid4().hex
    if write == "create":
        response = rest.post("videoJobs", params={"documentId": new_id}, json={"fields": own_fields}, headers=headers)
    elif write == "update":
        response = rest.patch(
            f"videoJobs/{job.job_id}",
            params={"updateMask.fieldPaths": "status"},
            json={"fields": own_fields},
            headers=headers,
        )
    else:
        response = rest.delete(f"videoJobs/{job.job_id}", headers=headers)
    assert response.status_code == FORBIDDEN, response.text
    assert jobs.get(job.job_id) == job
    assert not jobs.jobs.document(new_id).get().exists


def test_the_owner_lists_their_jobs_by_querying_on_their_user_id(
    rest: httpx.Client, job: Job, jobs: FirestoreJobStore, firestore_emulator: FirestoreEmulator
) -> None:
    second = Job.new(validate_request({"prompts": ["the same lighthouse at dawn"]}), job.user_id)
    jobs.create(second)
    response = run_query(rest, firestore_emulator, job.user_id, job.user_id)
    assert response.status_code == 200, response.text
    names = {row["document"]["name"].rsplit("/", 1)[1] for row in response.json() if "document" in row}
    assert names == {job.job_id, second.job_id}


@pytest.mark.parametrize("filter_user", [None, "someone-else"], ids=["no-user-filter", "another-users-jobs"])
def test_a_query_not_limited_to_the_users_own_jobs_is_denied(
    filter_user: str | None, rest: httpx.Client, job: Job, firestore_emulator: FirestoreEmulator
) -> None:
    response = run_query(rest, firestore_emulator, job.user_id, filter_user)
    assert response.status_code == FORBIDDEN, response.text


def test_a_user_reads_their_own_daily_usage_and_nobody_writes_it(
    jobs: FirestoreJobStore, rest: httpx.Client, firestore_emulator: FirestoreEmulator
) -> None:
    owner = f"spender-{uuid.uuid4().hex}"
    job = Job.new(validate_request({"prompts": ["a scene"]}), owner)
    job.budget = Reservation(day="2026-11-29", seconds=8)
    jobs.submit(job)
    mine = f"usage/{owner}/days/2026-11-29"

    read = rest.get(mine, headers=signed_in(owner, firestore_emulator))
    assert read.status_code == 200 and read.json()["fields"]["seconds"] == {"integerValue": "8"}
    assert rest.get(mine, headers=signed_in("someone-else", firestore_emulator)).status_code == FORBIDDEN
    assert rest.get(mine).status_code == FORBIDDEN
    forged = {"fields": {"seconds": {"integerValue": "0"}}}
    assert rest.patch(mine, json=forged, headers=signed_in(owner, firestore_emulator)).status_code == FORBIDDEN
    project = "projectUsage/2026-11-29"
    assert rest.get(project, headers=signed_in(owner, firestore_emulator)).status_code == FORBIDDEN
