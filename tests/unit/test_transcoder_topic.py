"""TRANSCODER_TOPIC and STITCH_SAFETY_NET_SECONDS: the Pub/Sub topic the Transcoder announces its
jobs' end on (a deploy setting: it names the Pub/Sub function's trigger), checked as Pub/Sub checks
a topic id, and the poller's wait behind it; the composition hands the topic to the stitcher."""

from __future__ import annotations

from unittest import mock

import pytest
from google.auth.credentials import AnonymousCredentials

from longform.cloud.composition import Cloud
from longform.config import Settings
from longform.errors import InvalidSetting


def test_no_topic_by_default_and_a_two_minute_safety_net() -> None:
    settings = Settings.from_env({})
    assert (settings.transcoder_topic, settings.stitch_safety_net_seconds) == ("", 120)
    assert "transcoder_topic" in Settings.fields_for("deploy", by="field")
    assert "STITCH_SAFETY_NET_SECONDS" in Settings.fields_for("param")


@pytest.mark.parametrize("topic", ["transcoder-jobs", "abc", "T.x~y+z%20_1", "a" * 255])
def test_a_topic_id_as_pub_sub_allows_it(topic: str) -> None:
    assert Settings.from_env({"TRANSCODER_TOPIC": topic}).transcoder_topic == topic


@pytest.mark.parametrize(
    "topic",
    ["ab", "1jobs", "-jobs", "google-jobs", "jobs/x", "projects/p/topics/jobs", "a b c", "a" * 256, "jöbs"],
)
def test_a_bad_topic_is_refused_naming_the_variable_and_the_rule(topic: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        Settings.from_env({"TRANSCODER_TOPIC": topic})
    assert "TRANSCODER_TOPIC: must be a Pub/Sub topic id" in str(caught.value)


@pytest.mark.parametrize(("value", "rule"), [("-1", "must be at least 0"), ("481", "must be at most 480")])
def test_the_safety_net_is_bounded_by_the_pollers_budget(value: str, rule: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        Settings.from_env({"STITCH_SAFETY_NET_SECONDS": value})
    assert f"STITCH_SAFETY_NET_SECONDS: {rule}" in str(caught.value)


@pytest.mark.parametrize(("topic", "destination"), [("jobs-done", "projects/my-project/topics/jobs-done"), ("", None)])
def test_the_composition_gives_the_transcoder_stitcher_the_topic(topic: str, destination: str | None) -> None:
    settings = Settings(project="my-project", bucket="b", transcoder_topic=topic)
    with mock.patch("google.auth.default", return_value=(AnonymousCredentials(), "my-project")):
        stitcher = Cloud(settings).stitcher
    assert stitcher.topic == destination  # type: ignore[attr-defined]
