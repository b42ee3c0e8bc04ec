from dataclasses import replace
from pathlib import Path

import pytest

from longform.cloud.callables import deployment_limits
from longform.cloud.params import CloudSettings
from longform.errors import InvalidRequest
from longform.request import validate_request

SETTINGS = CloudSettings(
    project="p",
    bucket="b",
    local_dir=None,
    video_model="veo",
    veo_model="veo-3.1-fast-generate-001",
    vertex_location="us-central1",
    vertex_base_url="",
    stitch_backend="transcoder",
    transcoder_location="us-central1",
    transcoder_endpoint="",
    signed_url_hours=72,
    max_active_jobs=3,
    poll_seconds=10,
    stitch_poll_budget_seconds=300,
    stitch_max_poll_attempts=6,
)


def seconds_allowed(settings: CloudSettings) -> tuple[int, ...]:
    return deployment_limits(settings).segment_seconds


def test_veo_3_with_the_transcoder_takes_6_and_8_and_says_why_4_is_refused() -> None:
    assert seconds_allowed(SETTINGS) == (6, 8)
    with pytest.raises(InvalidRequest) as caught:
        validate_request({"prompts": ["a"], "segmentSeconds": 4}, deployment_limits(SETTINGS))
    assert caught.value.field == "segmentSeconds"
    assert "Transcoder" in caught.value.rule and "STITCH_BACKEND=ffmpeg" in caught.value.rule


def test_the_in_function_stitcher_takes_every_length_veo_3_makes() -> None:
    assert seconds_allowed(replace(SETTINGS, stitch_backend="ffmpeg")) == (4, 6, 8)


def test_veo_2_durations_are_checked_before_any_job_exists() -> None:
    veo2 = replace(SETTINGS, veo_model="veo-2.0-generate-001", stitch_backend="ffmpeg")
    assert seconds_allowed(veo2) == (5, 6, 7, 8)
    with pytest.raises(InvalidRequest, match=r"veo-2\.0-generate-001"):
        validate_request({"prompts": ["a"], "segmentSeconds": 4}, deployment_limits(veo2))


def test_the_preview_renderer_takes_the_request_rules_alone() -> None:
    assert seconds_allowed(replace(SETTINGS, video_model="preview", stitch_backend="ffmpeg", local_dir=Path("/x"))) == (
        4,
        6,
        8,
    )
