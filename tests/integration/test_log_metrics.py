"""The log-based metrics in monitoring/log-metrics select lines that real runs write, and extract
fields those lines carry: a job with quota refusals, a failed call and a scene made twice, and a failed one, run by
the local engine with the cloud's JSON logging."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longform.adapters.sqlite import Database
from longform.errors import QuotaExceeded, TransientError
from longform.job import Status
from longform.logs import JsonFormatter
from tests.conftest import FakeWorld
from tests.fakes import FakeVideoModel, InMemoryBlobStore

METRICS = sorted((Path(__file__).parents[2] / "monitoring/log-metrics").glob("*.json"))
CLAUSE = re.compile(r'^jsonPayload\.(\w+)="([^"]*)"$')  # the one filter form the configs use
FIELD = re.compile(r"^EXTRACT\(jsonPayload\.(\w+)\)$")


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        blobs = InMemoryBlobStore()
        quota = QuotaExceeded("429 RESOURCE_EXHAUSTED Quota exceeded", retry_after=1)
        world = FakeWorld(
            Database(tmp_path_factory.mktemp("metrics") / "longform.db"),
            blobs=blobs,
            model=FakeVideoModel(blobs, failures={1: [quota, quota], 2: [TransientError("503")]}, broken={2: 1}),
        )
        assert world.runner(attempts=4).run(world.submit(3)).status is Status.COMPLETED
        world.model = FakeVideoModel(blobs, broken={0: 9})
        assert world.runner(attempts=4).run(world.submit(2)).status is Status.FAILED
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    yield [json.loads(line) for line in stream.getvalue().splitlines()]


def selected(metric: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clauses = [CLAUSE.match(part.strip()) for part in metric["filter"].split(" AND ")]
    assert all(clauses), f"{metric['name']}: a filter this test cannot read: {metric['filter']}"
    wanted = {m.group(1): m.group(2) for m in clauses if m}
    return [line for line in lines if all(str(line.get(k)) == v for k, v in wanted.items())]


@pytest.mark.parametrize("path", METRICS, ids=[p.stem for p in METRICS])
def test_each_metric_selects_real_lines_and_extracts_fields_they_carry(path: Path, lines: list[dict[str, Any]]) -> None:
    metric = json.loads(path.read_text())
    assert metric["name"] == path.stem  # `gcloud logging metrics create NAME --config-from-file=PATH`
    chosen = selected(metric, lines)
    assert chosen, f"no line matches {metric['filter']}"
    descriptor = metric["metricDescriptor"]
    if descriptor["valueType"] == "DISTRIBUTION":
        match = FIELD.match(metric["valueExtractor"])
        assert match and all(isinstance(line[match.group(1)], int | float) for line in chosen)
        assert "bucketOptions" in metric
    else:
        assert descriptor["valueType"] == "INT64" and "valueExtractor" not in metric
    assert {label["key"] for label in descriptor["labels"]} == set(metric["labelExtractors"])
    for key, extractor in metric["labelExtractors"].items():
        match = FIELD.match(extractor)
        assert match and all(match.group(1) in line for line in chosen), key


def test_the_lines_count_what_happened(lines: list[dict[str, Any]]) -> None:
    def events(name: str) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("event") == name]

    assert [line["service"] for line in events("quota_hit")] == ["veo", "veo"]
    assert sorted(line["attempts"] for line in events("scene_completed")) == [
        1,
        1,
        2,
    ]  # scene 3's first video was broken
    finished = events("job_finished")
    assert [(line["status"], line["failedStep"]) for line in finished] == [
        ("completed", None),
        ("failed", "segment-poll"),  # the poll step checks the file of a finished operation
    ]
    assert finished[0]["quotaHits"] == 2 and finished[0]["costUsd"] > 0 and finished[0]["latencySeconds"] >= 0
