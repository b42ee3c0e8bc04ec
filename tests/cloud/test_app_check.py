"""App Check on the callables, through functions-framework: firebase_admin's real verification of
tokens signed by a local key whose JWKS the test serves (devtools/app_check_keys.py). With
enforcement on, only a valid token of this project gets through; with it off
(ENFORCE_APP_CHECK=false, for local development) every call does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.app_check_keys import AppCheckKeys, new_key
from devtools.inngest_standin import InngestDevServer
from devtools.oauth_standin import OAuthStandIn
from tests.cloud.callable_http import User, jobs_of, serving_callables

TRIGGER = "trigger_long_form_video_job"


@pytest.fixture(scope="module")
def keys() -> Iterator[AppCheckKeys]:
    with AppCheckKeys() as served:
        yield served


@pytest.fixture(scope="module")
def events() -> Iterator[InngestDevServer]:
    with InngestDevServer() as api:
        yield api


@pytest.fixture(scope="module")
def credentials(firestore_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Application Default Credentials, as a deployed function has: firebase_admin's App Check
    service asks for them when it starts (a throwaway key; nothing calls Google with it)."""
    with OAuthStandIn() as oauth:
        path = tmp_path_factory.mktemp("adc") / "service-account.json"
        yield str(oauth.write_service_account(path, firestore_emulator.project))


def served(enforce: bool) -> Callable[..., Iterator[dict[str, str]]]:
    @pytest.fixture(scope="module")
    def urls(
        firestore_emulator: Any,
        events: InngestDevServer,
        keys: AppCheckKeys,
        credentials: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[dict[str, str]]:
        env = {
            "ENFORCE_APP_CHECK": str(enforce).lower(),
            "APP_CHECK_JWKS_URL": keys.url,
            "GOOGLE_APPLICATION_CREDENTIALS": credentials,
        }
        with serving_callables(firestore_emulator, events, tmp_path_factory.mktemp("logs"), env) as found:
            yield found

    return urls


enforced = served(enforce=True)
relaxed = served(enforce=False)


def call(url: str, user: User, app_check: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {user.token}"}
    if app_check is not None:
        headers["X-Firebase-AppCheck"] = app_check
    body = json.dumps({"data": {"prompts": ["a lighthouse at dusk"], "segmentSeconds": 8}}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def tokens(keys: AppCheckKeys, project: str) -> dict[str, str | None]:
    """The App Check header of each kind of caller (None: no header)."""
    return {
        "none": None,
        "forged": keys.token(project, key=new_key()),
        "expired": keys.token(project, expires_in=-120),
        "another project": keys.token("someone-elses-project"),
        "not a token": "not-a-jwt",
    }


def test_with_enforcement_only_a_valid_token_of_this_project_gets_through(
    enforced: dict[str, str], keys: AppCheckKeys, firestore_emulator: Any
) -> None:
    user = User(firestore_emulator.project)
    for kind, token in tokens(keys, firestore_emulator.project).items():
        status, body = call(enforced[TRIGGER], user, token)
        assert (status, body.get("error", {}).get("status")) == (401, "UNAUTHENTICATED"), kind
    assert jobs_of(firestore_emulator, user.uid) == []

    status, body = call(enforced[TRIGGER], user, keys.token(firestore_emulator.project))
    assert status == 200 and body["result"]["status"] == "queued", body
    assert len(jobs_of(firestore_emulator, user.uid)) == 1


def test_without_enforcement_every_caller_gets_through(
    relaxed: dict[str, str], keys: AppCheckKeys, firestore_emulator: Any
) -> None:
    for kind, token in tokens(keys, firestore_emulator.project).items():
        user = User(firestore_emulator.project)  # one each: the active-job limit is per user
        status, body = call(relaxed[TRIGGER], user, token)
        assert status == 200, (kind, body)
        assert len(jobs_of(firestore_emulator, user.uid)) == 1
