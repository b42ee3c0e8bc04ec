"""The callable protocol's body check and error mapping, shared by both callable transports."""

from __future__ import annotations

import json

import pytest

from longform.callable_protocol import MAX_DEPTH, callable_error, read_body
from longform.errors import InvalidRequest, JobNotQueued, TransientError


def test_a_well_formed_body_gives_its_data_whatever_the_brackets_inside_strings() -> None:
    prompt = "[" * 100 + '\\" {{{ "' + "]"
    assert read_body(json.dumps({"data": {"prompts": [prompt]}}).encode()) == {"prompts": [prompt]}


def test_nesting_is_counted_to_the_limit_and_no_further() -> None:
    inside = MAX_DEPTH - 1  # the body's own object is one level
    assert read_body(('{"data": ' + "[" * inside + "]" * inside + "}").encode()) is not None
    with pytest.raises(InvalidRequest, match="nest"):
        read_body(('{"data": ' + "[" * (inside + 1) + "]" * (inside + 1) + "}").encode())


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b"", 'must be a JSON object {"data": …}'),
        (b'{"data": {"prompts": ["a"]', 'must be a JSON object {"data": …}'),
        (b"\xff\xfe{}", 'must be a JSON object {"data": …} in UTF-8'),
        (b"42", 'must be a JSON object {"data": …}'),
        (b'{"data": 1, "more": 2}', 'must be a JSON object {"data": …}'),
        (b'{"data": ' + b"[" * 40 + b"]" * 40 + b"}", f"must not nest arrays and objects more than {MAX_DEPTH} deep"),
        (b'{"data": ' + b"7" * 5000 + b"}", "numbers must have at most 4300 digits"),
    ],
)
def test_a_malformed_body_names_the_body_and_the_rule(body: bytes, rule: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_body(body)
    assert (caught.value.field, caught.value.rule) == ("body", rule)


def test_errors_map_to_the_statuses_a_firebase_client_expects() -> None:
    assert callable_error(InvalidRequest("prompts", "is required")).body() == {
        "error": {
            "status": "INVALID_ARGUMENT",
            "message": "prompts: is required",
            "details": {
                "field": "prompts",
                "rule": "is required",
                "problems": [{"field": "prompts", "rule": "is required"}],
            },
        }
    }
    assert callable_error(JobNotQueued("j1", "503")).body()["error"]["details"] == {"jobId": "j1"}
    unavailable = callable_error(TransientError("Firestore: 503"))
    assert (unavailable.status, unavailable.http_status) == ("UNAVAILABLE", 503)
    internal = callable_error(KeyError("x"))
    assert (internal.status, internal.message, internal.http_status) == ("INTERNAL", "INTERNAL", 500)
