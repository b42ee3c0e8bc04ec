"""The Transcoder's Pub/Sub notice, end to end without Firebase: TranscoderStitcher with a topic
creates its job with ``pubsubDestination`` (through the real Transcoder client, against the
Transcoder stand-in), the stand-in publishes what the service publishes when the job ends
(https://cloud.google.com/transcoder/docs/how-to/create-pub-sub: ``{"job": {"name", "state",
"error"}}``, once, for SUCCEEDED or FAILED) to the Google Cloud CLI's Pub/Sub emulator, and a real
google-cloud-pubsub subscriber receives it there."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from devtools.pubsub_emulator import PubsubEmulator
from devtools.transcoder_standin import TranscoderStandIn
from longform.adapters.transcoder_stitcher import TranscoderStitcher, transcoder_client
from tests.integration.test_transcoder_stitcher import BUCKET, spec


class Topic:
    """A topic of its own on the emulator, a subscription to it, and a real subscriber."""

    def __init__(self, emulator: PubsubEmulator) -> None:
        self.id = f"transcoder-{uuid.uuid4().hex[:8]}"
        self.name = emulator.create_topic(self.id)
        self.subscription = emulator.create_subscription(f"{self.id}-test", self.id)
        self.subscriber = emulator.subscriber()

    def received(self, count: int, timeout: float = 15.0) -> list[Any]:
        """Pull until ``count`` messages arrived (acknowledging them), then a little longer, so one
        more would be seen too; the messages (google.pubsub_v1.PubsubMessage)."""
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = max(0.5, min(5.0, deadline - time.monotonic()))
            answer = self.subscriber.pull(subscription=self.subscription, max_messages=10, timeout=wait)
            if answer.received_messages:
                got += [m.message for m in answer.received_messages]
                ids = [m.ack_id for m in answer.received_messages]
                self.subscriber.acknowledge(subscription=self.subscription, ack_ids=ids)
            if len(got) >= count:
                deadline = min(deadline, time.monotonic() + 1.0)
        return got


@pytest.fixture
def topic(pubsub_emulator: PubsubEmulator) -> Iterator[Topic]:
    made = Topic(pubsub_emulator)
    yield made
    made.subscriber.close()


def stitcher_for(fake: TranscoderStandIn, topic: str | None) -> TranscoderStitcher:
    client = transcoder_client(fake.url, AnonymousCredentials())
    return TranscoderStitcher(client, "demo-longform-test", "us-central1", BUCKET, topic=topic)


def test_a_job_that_succeeds_is_announced_once_on_its_topic(pubsub_emulator: PubsubEmulator, topic: Topic) -> None:
    with TranscoderStandIn(states=["RUNNING", "SUCCEEDED"], pubsub_url=pubsub_emulator.url) as fake:
        stitcher = stitcher_for(fake, topic.id)
        name = stitcher.start(spec())
        [created] = fake.created
        assert created["config"]["pubsubDestination"] == {"topic": f"projects/demo-longform-test/topics/{topic.id}"}
        assert topic.name == created["config"]["pubsubDestination"]["topic"]

        assert not stitcher.poll(name).done  # RUNNING: no notice
        assert topic.received(0, timeout=1.0) == []
        assert stitcher.poll(name).done  # it ends now: one notice
        assert stitcher.poll(name).done  # and asked again: no second one
        [message] = topic.received(1)

    assert json.loads(message.data) == {"job": {"name": name, "state": "SUCCEEDED"}}
    assert dict(message.attributes) == {}
    assert fake.publish_errors == []


def test_a_job_that_fails_by_itself_is_announced_with_its_error(pubsub_emulator: PubsubEmulator, topic: Topic) -> None:
    failure = "The input file is shorter than 5 seconds."
    with TranscoderStandIn(
        states=["RUNNING", "FAILED"], failure=failure, finish_after=0.3, pubsub_url=pubsub_emulator.url
    ) as fake:
        stitcher = stitcher_for(fake, topic.id)
        name = stitcher.start(spec())
        assert not stitcher.poll(name).done  # before its time it runs, whatever the polls
        [message] = topic.received(1)  # nobody polls: it ends, and says so, by itself
        assert name in fake.finished_at

    assert json.loads(message.data) == {
        "job": {"name": name, "state": "FAILED", "error": {"code": 3, "message": failure}}
    }


def test_a_job_without_a_topic_and_a_job_deleted_while_running_announce_nothing(
    pubsub_emulator: PubsubEmulator, topic: Topic
) -> None:
    with TranscoderStandIn(states=["RUNNING", "SUCCEEDED"], finish_after=0.3, pubsub_url=pubsub_emulator.url) as fake:
        quiet = stitcher_for(fake, None).start(spec())
        deleted = stitcher_for(fake, topic.id)
        name = deleted.start(spec())
        deleted.cancel(name)  # deleted before its end: the service tells nobody
        time.sleep(0.6)
        assert quiet in fake.finished_at and name not in fake.finished_at
        assert "pubsubDestination" not in fake.created[0]["config"]
        assert fake.published == []
    assert topic.received(0, timeout=1.0) == []
