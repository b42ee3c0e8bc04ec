"""Malformed bodies never get a 5xx: 1,000 generated bodies, each sent to both callables served by
functions-framework (Firestore emulator, Inngest stand-in) and to the local server. Every one is
refused with 400 INVALID_ARGUMENT in the callable error format, writes no document and sends no
event. Hypothesis is derandomized, so a run is repeatable."""

from __future__ import annotations

import json
import string
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.inngest_standin import InngestDevServer
from longform import bootstrap
from longform.config import Settings
from longform.local_server import LocalBackend, create_app
from tests.cloud.callable_http import CALLABLES, User, jobs_of, serving_callables

EXAMPLES = 1000
VALID = json.dumps({"data": {"prompts": ["a fox in the snow", "the fox leaps"], "segmentSeconds": 8}})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# A request the validator must refuse: no prompts, or prompts that are not a list of text.
invalid_requests = json_values.filter(
    lambda v: not isinstance(v, dict) or not isinstance(v.get("prompts"), list) or not v["prompts"]
) | st.fixed_dictionaries({"prompts": st.lists(json_values.filter(lambda v: not isinstance(v, str)), min_size=1)})

bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=64),  # mostly not UTF-8, not JSON
    st.integers(1, len(VALID) - 1).map(lambda n: VALID[:n].encode()),  # truncated
    st.just(VALID.encode("utf-16")),
    st.text(alphabet=string.ascii_letters, max_size=10).map(  # Latin-1: é then ASCII is not UTF-8
        lambda t: json.dumps({"data": {"prompts": ["é!" + t]}}, ensure_ascii=False).encode("latin-1")
    ),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),  # not an object
    st.dictionaries(st.text(max_size=8).filter(lambda k: k != "data"), json_values, max_size=3).map(
        lambda d: json.dumps(d).encode()  # no data
    ),
    json_values.map(lambda v: json.dumps({"data": {"prompts": ["a"]}, "extra": v}).encode()),
    st.integers(33, 1200).map(lambda n: ('{"data": ' + "[" * n + "]" * n + "}").encode()),  # deep
    st.integers(4301, 6000).map(lambda n: ('{"data": {"prompts": ["a"], "seed": ' + "9" * n + "}}").encode()),
    invalid_requests.map(lambda v: json.dumps({"data": v}).encode()),
)


@pytest.fixture(scope="module")
def events() -> Iterator[InngestDevServer]:
    with InngestDevServer() as api:
        yield api


@pytest.fixture(scope="module")
def cloud(
    firestore_emulator: Any, events: InngestDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    with serving_callables(firestore_emulator, events, tmp_path_factory.mktemp("logs")) as urls:
        yield urls


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[FlaskClient, LocalBackend]:
    backend = LocalBackend(Settings(data_dir=Path(tmp_path_factory.mktemp("local"))))
    return create_app(backend).test_client(), backend


def post(url: str, body: bytes, token: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    req = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_refused(status: int, answer: Any, body: bytes) -> None:
    assert status == 400, (status, answer, body[:200])
    assert answer["error"]["status"] == "INVALID_ARGUMENT", (answer, body[:200])
    assert answer["error"]["message"], answer


def test_malformed_bodies_are_refused_with_400_and_write_nothing(
    cloud: dict[str, str],
    local: tuple[FlaskClient, LocalBackend],
    events: InngestDevServer,
    firestore_emulator: Any,
) -> None:
    user = User(firestore_emulator.project)
    client, backend = local
    seen: list[bytes] = []

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
    )
    @given(body=bodies)
    def each(body: bytes) -> None:
        seen.append(body)
        for name in CALLABLES:
            assert_refused(*post(cloud[name], body, user.token), body)
            response = client.post(f"/{backend.settings.project}/{backend.settings.region}/{name}", data=body,
                                   content_type="application/json")  # fmt: skip
            assert_refused(response.status_code, response.get_json(), body)

    each()

    assert len(seen) >= EXAMPLES
    kinds = {"empty": b"", "deep": b"[[[[", "digits": b"9999"}
    assert all(any(marker in body for body in seen) for marker in kinds.values() if marker), "strategies unused"
    assert jobs_of(firestore_emulator, user.uid) == []
    assert [e for e in events.events if e.get("data", {}).get("userId") == user.uid] == []
    assert backend.service.recent(bootstrap.LOCAL_USER) == []
