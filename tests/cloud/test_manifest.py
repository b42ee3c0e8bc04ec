"""What `firebase deploy` would see: firebase_functions' own discovery of functions/main.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from longform.config import Settings
from tests.cloud.callable_http import CALLABLES

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
DISCOVER = "from firebase_functions.private import serving\nprint(serving.functions_as_yaml(serving.get_functions()))\n"


def run_discovery(**extra_env: str) -> subprocess.CompletedProcess[str]:
    # The way firebase-tools does it: import main.py from the source folder, no credentials,
    # no emulator, no secrets in the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST", "FIRESTORE", "GOOGLE", "FIREBASE"))}
    return subprocess.run(
        [sys.executable, "-c", DISCOVER],
        cwd=FUNCTIONS,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def discover() -> dict[str, Any]:
    result = run_discovery()
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


def test_discovery_finds_exactly_the_entry_points_with_their_triggers() -> None:
    manifest = discover()
    endpoints = manifest["endpoints"]
    assert set(endpoints) == {*CALLABLES, "inngest_api", "poll_transcoder_job", "remove_old_media", "sweep_stuck_jobs"}
    for name in CALLABLES:
        assert "callableTrigger" in endpoints[name]
        assert endpoints[name]["timeoutSeconds"] == 60
        assert [s["key"] for s in endpoints[name]["secretEnvironmentVariables"]] == ["INNGEST_EVENT_KEY"]
    api = endpoints["inngest_api"]
    assert "httpsTrigger" in api
    assert api["timeoutSeconds"] == 1800
    assert sorted(s["key"] for s in api["secretEnvironmentVariables"]) == ["INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY"]
    poller = endpoints["poll_transcoder_job"]
    trigger = poller["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.firestore.document.v1.updated"
    assert trigger["eventFilterPathPatterns"] == {"document": "videoJobs/{jobId}"}
    assert trigger["eventFilters"]["database"] == "(default)"
    assert poller["timeoutSeconds"] == 540
    retention = endpoints["remove_old_media"]
    assert retention["scheduleTrigger"]["schedule"] == "every 24 hours"
    assert endpoints["sweep_stuck_jobs"]["scheduleTrigger"]["schedule"] == "every 5 minutes"
    for endpoint in endpoints.values():
        assert endpoint["region"] == ["us-central1"]
        assert endpoint["platform"] == "gcfv2"
        assert endpoint["entryPoint"] in endpoints


def test_params_and_secrets_are_declared_for_deploy_to_ask_for() -> None:
    declared = {p["name"]: p for p in discover()["params"]}
    assert declared["INNGEST_SIGNING_KEY"]["type"] == "secret"
    assert declared["INNGEST_EVENT_KEY"]["type"] == "secret"
    assert declared["STITCH_BACKEND"]["default"] == "transcoder"
    assert declared["MAX_ACTIVE_JOBS"]["default"] == 3
    assert {"LONGFORM_BUCKET", "VEO_MODEL", "VIDEO_MODEL"} <= set(declared)


def test_every_param_is_declared_with_the_settings_default_and_meaning() -> None:
    declared = {p["name"]: p for p in discover()["params"]}
    for name, field in Settings.fields_for("param").items():
        # whole numbers and booleans are Int/BoolParams; every other setting is a StringParam of its text
        typed = field.annotation in (int, bool)
        default = field.default if typed else "" if field.default is None else str(field.default)
        assert declared[name]["default"] == default, name
        assert declared[name]["description"] == field.description, name


def test_a_bad_deploy_setting_stops_discovery_naming_it() -> None:
    result = run_discovery(USER_CONCURRENCY="abc")
    assert result.returncode != 0
    assert "USER_CONCURRENCY: must be a whole number, got 'abc'" in result.stderr


def test_the_region_setting_places_every_function() -> None:
    result = run_discovery(LONGFORM_REGION="europe-west4")
    assert result.returncode == 0, result.stderr
    assert {tuple(e["region"]) for e in yaml.safe_load(result.stdout)["endpoints"].values()} == {("europe-west4",)}


def test_with_a_transcoder_topic_a_pubsub_function_settles_its_notices() -> None:
    result = run_discovery(TRANSCODER_TOPIC="transcoder-jobs")
    assert result.returncode == 0, result.stderr
    endpoints = yaml.safe_load(result.stdout)["endpoints"]
    assert set(endpoints) == {
        *CALLABLES,
        "inngest_api",
        "poll_transcoder_job",
        "remove_old_media",
        "sweep_stuck_jobs",
    } | {"settle_transcoder_job"}
    settle = endpoints["settle_transcoder_job"]
    trigger = settle["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["eventFilters"] == {"topic": "transcoder-jobs"}
    assert trigger["retry"] is False  # a notice not acted on is the poller's to finish
    assert (settle["region"], settle["timeoutSeconds"]) == (["us-central1"], 300)


def test_a_bad_transcoder_topic_stops_discovery_naming_it() -> None:
    result = run_discovery(TRANSCODER_TOPIC="goog-jobs")
    assert result.returncode != 0
    assert "TRANSCODER_TOPIC: must be a Pub/Sub topic id" in result.stderr
