"""Calling the callables over HTTP as a Firebase client does, served by functions-framework from
functions/main.py against the Firestore emulator and the Inngest stand-in's Event API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from devtools.inngest_standin import InngestDevServer
from devtools.servers import functions_framework
from devtools.tokens import emulator_id_token

CALLABLES = (
    "trigger_long_form_video_job",
    "cancel_long_form_video_job",
    "resume_long_form_video_job",
    "edit_long_form_video_job",
    "get_playback_urls",
    "delete_long_form_video_job",
)


@contextmanager
def serving_callables(
    firestore: Any, events: InngestDevServer, log_dir: Path, env: Mapping[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """Each callable on its own functions-framework server; yields their URLs by name."""
    base = {
        "FIRESTORE_EMULATOR_HOST": firestore.host,
        "GCLOUD_PROJECT": firestore.project,
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",  # verify ID tokens the emulator's way
        "INNGEST_DEV": events.url,  # the SDK sends events to the dev server's Event API
        "ENFORCE_APP_CHECK": "false",  # App Check has tests of its own (test_app_check.py)
        # The project's ledger is shared by every test of the session: no project limit here.
        "PROJECT_SECONDS_PER_DAY": str(10**9),
        "LONGFORM_LOCAL_DIR": str(log_dir / "blobs"),  # the job files (the tests here make none)
    }
    with ExitStack() as stack:
        servers = [stack.enter_context(functions_framework(t, {**base, **(env or {})}, log_dir)) for t in CALLABLES]
        yield {s.name: f"http://127.0.0.1:{s.port}/" for s in servers}


def call(url: str, data: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """The callable protocol: {"data": …} in, {"result": …} or {"error": …} out."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps({"data": data}).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class User:
    """A signed-in user as the Auth emulator would issue: a uid and an unsigned ID token."""

    def __init__(self, project: str, uid: str | None = None, provider: str = "password", **claims: object) -> None:
        self.uid = uid or f"user-{uuid.uuid4().hex[:12]}"
        self.token = emulator_id_token(self.uid, project, provider, **claims)


def jobs_of(firestore: Any, uid: str) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1 import FieldFilter

    docs = firestore.client().collection("videoJobs").where(filter=FieldFilter("userId", "==", uid)).stream()
    return [d.to_dict() for d in docs]
