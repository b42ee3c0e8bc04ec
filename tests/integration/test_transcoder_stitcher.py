"""TranscoderStitcher through the real Transcoder client (REST transport) against a local server
that speaks the Transcoder REST API. Assertions are on the JSON the service received."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials

from devtools.servers import free_port
from devtools.transcoder_standin import TranscoderStandIn
from longform.adapters.transcoder_stitcher import TranscoderStitcher, transcoder_client
from longform.errors import PermanentError, TransientError
from longform.ports import StitchSpec, final_key, segment_key

BUCKET = "longform-test"
Make = Callable[..., tuple[TranscoderStandIn, TranscoderStitcher]]


def spec(segments: int = 3, *, audio: bool = True, seconds: int = 8, size: tuple[int, int] = (1280, 720)) -> StitchSpec:
    job_id = f"Job_{uuid.uuid4().hex[:8]}"
    return StitchSpec(
        job_id=job_id,
        user_id="Uid.Of+Someone",
        run_key=f"{job_id}-r1",
        segment_keys=tuple(segment_key(job_id, i) for i in range(segments)),
        output_key=final_key(job_id),
        width=size[0],
        height=size[1],
        segment_seconds=seconds,
        audio=audio,
    )


@pytest.fixture
def make() -> Iterator[Make]:
    fakes: list[TranscoderStandIn] = []

    def build(**options: Any) -> tuple[TranscoderStandIn, TranscoderStitcher]:
        fake = TranscoderStandIn(**options).__enter__()
        fakes.append(fake)
        client = transcoder_client(fake.url, AnonymousCredentials())
        return fake, TranscoderStitcher(client, "demo-project", "us-central1", BUCKET, ttl_days=3)

    yield build
    for fake in fakes:
        fake.__exit__(None)


def test_creates_a_job_that_concatenates_the_segments_in_order(make: Make) -> None:
    fake, stitcher = make()
    s = spec(segments=3)

    name = stitcher.start(s)

    assert name.startswith("projects/demo-project/locations/us-central1/jobs/")
    jobs_path = "/v1/projects/demo-project/locations/us-central1/jobs"
    assert fake.requests == [("GET", jobs_path), ("POST", jobs_path)]  # the run's job, if made, then create
    [job] = fake.created
    config = job["config"]
    uri_of = {i["key"]: i["uri"] for i in config["inputs"]}
    assert sorted(uri_of.values()) == sorted(f"gs://{BUCKET}/{key}" for key in s.segment_keys)
    timeline = [uri_of[atom["inputs"][0]] for atom in config["editList"]]
    assert timeline == [f"gs://{BUCKET}/{key}" for key in s.segment_keys]
    assert all(len(atom["inputs"]) == 1 and atom.get("startTimeOffset", "0s") == "0s" for atom in config["editList"])
    assert len({atom["key"] for atom in config["editList"]}) == 3
    assert config["output"] == {"uri": f"gs://{BUCKET}/jobs/{s.job_id}/final/"}
    [mux] = config["muxStreams"]
    assert mux["key"] == "video" and mux.get("container", "mp4") == "mp4"
    assert f"{config['output']['uri']}{mux.get('fileName', 'video.mp4')}" == f"gs://{BUCKET}/{s.output_key}"
    assert job["ttlAfterCompletionDays"] == 3
    assert job["labels"] == {"jobid": s.job_id.lower(), "userid": "uid_of_someone", "run": f"{s.job_id.lower()}-r1"}


def test_a_create_whose_answer_was_lost_is_found_by_the_retry_not_made_again(make: Make) -> None:
    fake, stitcher = make()
    s = spec()
    fake.lose_next("POST")
    with pytest.raises(TransientError, match="unreachable"):
        stitcher.start(s)
    assert len(fake.created) == 1  # it went through

    name = stitcher.start(s)  # the step's retry

    assert len(fake.created) == 1
    assert [name] == list(fake.jobs)
    assert stitcher.poll(name).done is False


def test_each_run_of_a_job_gets_its_own_stitch(make: Make) -> None:
    fake, stitcher = make()
    first = spec()
    resumed = dataclasses.replace(first, run_key=f"{first.job_id}-r2")
    other_job = spec()

    names = [stitcher.start(first), stitcher.start(resumed), stitcher.start(other_job), stitcher.start(first)]

    assert len(fake.created) == 3
    assert names[0] == names[3] and len(set(names)) == 3


def test_cancel_deletes_the_job_and_is_quiet_about_one_already_gone(make: Make) -> None:
    fake, stitcher = make(states=["RUNNING"])
    name = stitcher.start(spec())

    stitcher.cancel(name)
    stitcher.cancel(name)

    assert fake.deleted == [name]
    with pytest.raises(PermanentError, match="not found"):
        stitcher.poll(name)


def test_the_stand_in_refuses_a_filter_it_does_not_understand(make: Make) -> None:
    _, stitcher = make()
    with pytest.raises(api_exceptions.BadRequest, match="Invalid filter"):
        stitcher.client.list_jobs(request={"parent": stitcher.parent, "filter": "state = SUCCEEDED"})


def test_video_is_h264_at_the_spec_size_and_24_fps(make: Make) -> None:
    fake, stitcher = make()
    stitcher.start(spec(size=(1080, 1920)))
    streams = fake.created[0]["config"]["elementaryStreams"]
    [h264] = [s["videoStream"]["h264"] for s in streams if "videoStream" in s]
    assert (h264["widthPixels"], h264["heightPixels"], h264["frameRate"]) == (1080, 1920, 24)
    assert h264["pixelFormat"] == "yuv420p" and h264["gopDuration"] == "2s"
    assert 4_000_000 <= h264["bitrateBps"] <= 12_000_000


def test_audio_is_aac_stereo_when_the_segments_have_audio(make: Make) -> None:
    fake, stitcher = make()
    stitcher.start(spec(audio=True))
    stitcher.start(spec(audio=False))
    with_audio, without = (job["config"] for job in fake.created)

    [audio] = [s["audioStream"] for s in with_audio["elementaryStreams"] if "audioStream" in s]
    assert audio["codec"] == "aac" and audio["sampleRateHertz"] == 48000
    assert audio["channelCount"] == 2 and audio["channelLayout"] == ["fl", "fr"] and audio["bitrateBps"] > 0
    assert sorted(with_audio["muxStreams"][0]["elementaryStreams"]) == sorted(
        s["key"] for s in with_audio["elementaryStreams"]
    )
    assert [s for s in without["elementaryStreams"] if "audioStream" in s] == []
    assert len(without["muxStreams"][0]["elementaryStreams"]) == 1


def test_refuses_segments_shorter_than_five_seconds_without_creating_a_job(make: Make) -> None:
    fake, stitcher = make()
    with pytest.raises(PermanentError, match="STITCH_BACKEND=ffmpeg") as caught:
        stitcher.start(spec(seconds=4))
    assert "segmentSeconds 6 or 8" in str(caught.value)
    assert fake.requests == [] and fake.created == []


def test_poll_reports_running_until_the_job_succeeds_then_the_output_key(make: Make) -> None:
    fake, stitcher = make(states=["PENDING", "RUNNING", "SUCCEEDED"])
    s = spec()
    name = stitcher.start(s)

    polls = [stitcher.poll(name) for _ in range(3)]

    assert [p.done for p in polls] == [False, False, True]
    assert [p.key for p in polls] == [None, None, s.output_key]
    assert {p.name for p in polls} == {name}
    assert fake.requests[2:] == [("GET", f"/v1/{name}")] * 3  # after the list and the create


def test_poll_raises_permanent_error_with_the_jobs_message_when_it_failed(make: Make) -> None:
    _, stitcher = make(states=["RUNNING", "FAILED"], failure="Input seg2 has no audio track.")
    name = stitcher.start(spec())
    assert stitcher.poll(name).done is False
    with pytest.raises(PermanentError, match="Input seg2 has no audio track"):
        stitcher.poll(name)


def test_unavailable_service_is_transient_and_polled_once(make: Make) -> None:
    fake, stitcher = make(states=["SUCCEEDED"])
    name = stitcher.start(spec())
    fake.fail_next(503, "The service is currently unavailable.")

    started = time.monotonic()
    with pytest.raises(TransientError, match="currently unavailable"):
        stitcher.poll(name)
    # The client would retry a 503 on get_job for up to 60 s; the poller owns retries instead.
    assert time.monotonic() - started < 1
    assert fake.requests.count(("GET", f"/v1/{name}")) == 1
    assert stitcher.poll(name).done is True


@pytest.mark.parametrize(("status", "error"), [(503, TransientError), (429, TransientError), (400, PermanentError)])
def test_create_errors_are_mapped(make: Make, status: int, error: type[Exception]) -> None:
    fake, stitcher = make()
    fake.fail_next(status, "nope")
    with pytest.raises(error, match="nope") as caught:
        stitcher.start(spec())
    assert caught.value.__cause__ is not None
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("status", "error"), [(400, PermanentError), (403, PermanentError), (500, TransientError)])
def test_poll_errors_are_mapped(make: Make, status: int, error: type[Exception]) -> None:
    fake, stitcher = make()
    name = stitcher.start(spec())
    fake.fail_next(status, "nope")
    with pytest.raises(error, match="nope"):
        stitcher.poll(name)


def test_polling_an_unknown_job_is_permanent(make: Make) -> None:
    _, stitcher = make()
    with pytest.raises(PermanentError, match="not found"):
        stitcher.poll("projects/demo-project/locations/us-central1/jobs/missing")


def test_unreachable_service_is_transient() -> None:
    client = transcoder_client(f"http://127.0.0.1:{free_port()}", AnonymousCredentials())  # nothing listens
    stitcher = TranscoderStitcher(client, "demo-project", "us-central1", BUCKET)
    with pytest.raises(TransientError, match="unreachable"):
        stitcher.poll("projects/demo-project/locations/us-central1/jobs/any")


def test_on_create_sees_the_created_job(make: Make) -> None:
    seen: list[dict[str, Any]] = []
    _, stitcher = make(on_create=seen.append)
    s = spec(segments=2)
    name = stitcher.start(s)
    [job] = seen
    assert job["name"] == name and job["state"] == "PENDING"
    assert [i["uri"] for i in job["config"]["inputs"]] == [f"gs://{BUCKET}/{k}" for k in s.segment_keys]


def test_a_failing_on_create_hook_fails_the_request_and_then_the_test() -> None:
    def broken(job: dict[str, Any]) -> None:
        raise RuntimeError("segment 1 is missing")

    with pytest.raises(RuntimeError, match="segment 1 is missing"), TranscoderStandIn(on_create=broken) as fake:
        client = transcoder_client(fake.url, AnonymousCredentials())
        stitcher = TranscoderStitcher(client, "demo-project", "us-central1", BUCKET)
        with pytest.raises(TransientError, match="on_create failed"):
            stitcher.start(spec())
    assert fake.created == []
