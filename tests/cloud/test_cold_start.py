"""A cold ``import main`` loads only what discovery and the decorators need (not timed here: the
bench times it, bench/cold_import.py); what a handler uses is loaded on its first call, and the
Firestore trigger deferred that way is the library's own, for discovery and for its events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from firebase_functions import firestore_fn, options

from longform.cloud import firestore_trigger
from tests.cloud.test_manifest import FUNCTIONS

# Each is imported by the first call of the handler that needs it, never by ``import main``.
DEFERRED = (
    "inngest",  # the Inngest endpoint and the events the callables send
    "firebase_functions.firestore_fn",  # the poller's trigger
    "google.cloud.firestore_v1",  # the job store
    "google.cloud.storage",  # the blob store
    "google.cloud.video",  # the Transcoder
    "google.genai",  # Veo
    "av",  # the in-function stitch, the media check, the last frames
    "numpy",
    "PIL",
    "longform.service",
    "longform.workflow",
)


def run_in_functions(code: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter in functions/, with no credentials, emulator or secret in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST", "FIRESTORE", "GOOGLE", "FIREBASE"))}
    argv = [sys.executable, "-c", code]
    return subprocess.run(argv, cwd=FUNCTIONS, env={**env, **extra_env}, capture_output=True, text=True, timeout=120)


def test_a_cold_import_of_main_loads_no_client_sdk_media_library_or_workflow() -> None:
    code = "import json, sys\nimport main\nprint(json.dumps(sorted(sys.modules)))\n"
    result = run_in_functions(code)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert {"firebase_functions.https_fn", "firebase_functions.scheduler_fn"} <= loaded
    assert [m for m in DEFERRED if m in loaded] == []


def _handler(event: Any) -> None:
    pass


def test_the_deferred_trigger_declares_the_librarys_endpoint() -> None:
    assert firestore_fn._event_type_updated == firestore_trigger.UPDATED
    for kwargs in (
        {"document": "videoJobs/{jobId}", "region": "europe-west4", "timeout_sec": 540},
        {"document": "videoJobs/one", "memory": options.MemoryOption.MB_512, "database": "other"},
    ):
        ours = firestore_trigger.on_document_updated(**kwargs)(_handler)
        theirs = firestore_fn.on_document_updated(**kwargs)(_handler)
        assert ours.__firebase_endpoint__ == theirs.__firebase_endpoint__  # type: ignore[attr-defined]
        assert ours.__name__ == theirs.__name__ == "_handler"


# As Firestore delivers an update of videoJobs/job-1 (a protobuf DocumentEventData), to main's
# poll_transcoder_job; the poller itself is replaced by a recorder.
DELIVER = """
import json, sys
from cloudevents.http import CloudEvent
from google.events.cloud import firestore as ev
import main
from longform.cloud import stitch_poller

seen = []
stitch_poller.on_job_updated = lambda job_id, before, after, cloud: seen.append([job_id, before, after])
name = "projects/demo-longform/databases/(default)/documents/videoJobs/job-1"
def doc(status):
    fields = {"status": ev.Value(string_value=status), "segments": ev.Value(integer_value=3)}
    return ev.Document(name=name, fields=fields)
data = ev.DocumentEventData(value=doc("stitching"), old_value=doc("generating"))
attributes = {
    "type": "google.cloud.firestore.document.v1.updated",
    "source": "//firestore.googleapis.com/projects/demo-longform/databases/(default)",
    "datacontenttype": "application/protobuf",
    "location": "nam5", "project": "demo-longform", "namespace": "(default)", "database": "(default)",
    "document": "videoJobs/job-1", "subject": "documents/videoJobs/job-1", "time": "2026-11-30T10:00:00.000000Z",
}
before = "firebase_functions.firestore_fn" in sys.modules
main.poll_transcoder_job(CloudEvent(attributes, ev.DocumentEventData.serialize(data)))
main.poll_transcoder_job(CloudEvent(attributes, ev.DocumentEventData.serialize(data)))
print(json.dumps({"before": before, "after": "firebase_functions.firestore_fn" in sys.modules, "seen": seen}))
"""


def test_the_trigger_hands_an_update_to_the_poller_through_the_library() -> None:
    result = run_in_functions(
        DELIVER,
        FIREBASE_CONFIG=json.dumps({"projectId": "demo-longform"}),  # as the Functions runtime sets it
        FIRESTORE_EMULATOR_HOST="127.0.0.1:9",  # the snapshots' client is made, never used
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["before"], out["after"]) == (False, True)
    update = ["job-1", {"status": "generating", "segments": 3}, {"status": "stitching", "segments": 3}]
    assert out["seen"] == [update, update]


def test_with_a_transcoder_topic_a_cold_import_still_loads_no_client_sdk_or_workflow() -> None:
    declared = "hasattr(main, 'settle_transcoder_job')"
    code = f"import json, sys\nimport main\nprint(json.dumps([{declared}, sorted(sys.modules)]))"
    result = run_in_functions(code, TRANSCODER_TOPIC="transcoder-jobs")
    assert result.returncode == 0, result.stderr
    declared, loaded = json.loads(result.stdout)
    assert declared
    assert [m for m in DEFERRED if m in set(loaded)] == []


# As Eventarc delivers a message of the Transcoder topic (a structured CloudEvent whose data is the
# Pub/Sub message, base64 data), to main's settle_transcoder_job; the use case is replaced by a recorder.
DELIVER_NOTICE = """
import base64, json
from cloudevents.http import CloudEvent
import main
from longform.cloud import stitch_notifications

seen = []
stitch_notifications.on_message = lambda message, cloud: seen.append([message.message_id, message.json])
notice = {"job": {"name": "projects/1/locations/us-central1/jobs/j-1", "state": "SUCCEEDED"}}
data = base64.b64encode(json.dumps(notice).encode()).decode()
attributes = {
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
    "source": "//pubsub.googleapis.com/projects/demo-longform/topics/transcoder-jobs",
    "id": "e-1", "specversion": "1.0", "time": "2026-11-30T10:00:00.123Z",
}
message = {"data": data, "messageId": "m-1", "message_id": "m-1", "publishTime": "2026-11-30T10:00:00.123Z",
           "publish_time": "2026-11-30T10:00:00.123Z"}
event = CloudEvent(attributes, {"message": message, "subscription": "projects/demo-longform/subscriptions/s"})
main.settle_transcoder_job(event)
print(json.dumps(seen))
"""


def test_the_pubsub_function_hands_the_transcoder_notice_to_the_use_case_through_the_library() -> None:
    result = run_in_functions(
        DELIVER_NOTICE, TRANSCODER_TOPIC="transcoder-jobs", FIREBASE_CONFIG=json.dumps({"projectId": "demo-longform"})
    )
    assert result.returncode == 0, result.stderr
    notice = {"job": {"name": "projects/1/locations/us-central1/jobs/j-1", "state": "SUCCEEDED"}}
    assert json.loads(result.stdout) == [["m-1", notice]]
