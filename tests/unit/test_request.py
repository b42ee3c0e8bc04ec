import pytest

from longform.errors import InvalidRequest
from longform.request import MAX_SEED, Limits, VideoRequest, model_segment_seconds, validate_request


def ok(**fields: object) -> dict[str, object]:
    return {"prompts": ["a scene"], **fields}


GOOD = [
    (ok(), {"segmentSeconds": 8, "aspectRatio": "16:9", "resolution": "720p", "chain": True, "generateAudio": True}),
    (ok(segmentSeconds=4), {"segmentSeconds": 4}),
    (ok(segmentSeconds=6), {"segmentSeconds": 6}),
    (ok(aspectRatio="9:16", resolution="1080p"), {"aspectRatio": "9:16", "resolution": "1080p"}),
    (ok(chain=False, generateAudio=False), {"chain": False, "generateAudio": False}),
    (ok(seed=0), {"seed": 0}),
    (ok(seed=MAX_SEED), {"seed": MAX_SEED}),
    (ok(negativePrompt="blurry, text"), {"negativePrompt": "blurry, text"}),
    (ok(requestId="abc_DEF-123"), {"requestId": "abc_DEF-123"}),
    (ok(requestId="x" * 128), {"requestId": "x" * 128}),
    ({"prompts": ["  padded  "]}, {"prompts": ["padded"]}),
    ({"prompts": ["日本の夜景 🌃", "Ünïcødé"]}, {"prompts": ["日本の夜景 🌃", "Ünïcødé"]}),
    ({"prompts": ["x" * 2000]}, {"prompts": ["x" * 2000]}),
    ({"prompts": ["p"] * 50}, {"prompts": ["p"] * 50}),
]


@pytest.mark.parametrize(("data", "expected"), GOOD)
def test_accepts_valid_requests(data: dict[str, object], expected: dict[str, object]) -> None:
    stored = validate_request(data).to_json()
    for field, value in expected.items():
        assert stored[field] == value


BAD = [
    ([], "request", "must be an object"),
    ({}, "prompts", "is required"),
    ({"prompts": "one"}, "prompts", "must be a list"),
    ({"prompts": []}, "prompts", "at least 1"),
    ({"prompts": ["p"] * 51}, "prompts", "at most 50"),
    ({"prompts": ["ok", ""]}, "prompts[1]", "empty or whitespace"),
    ({"prompts": ["ok", "ok", " \t\n "]}, "prompts[2]", "empty or whitespace"),
    ({"prompts": ["x" * 2001]}, "prompts[0]", "at most 2000 characters"),
    ({"prompts": [7]}, "prompts[0]", "must be a string"),
    (ok(segmentSeconds=5), "segmentSeconds", "4, 6 or 8"),
    (ok(segmentSeconds="8"), "segmentSeconds", "must be an integer"),
    (ok(segmentSeconds=8.0), "segmentSeconds", "must be an integer"),
    (ok(segmentSeconds=True), "segmentSeconds", "must be an integer"),
    (ok(aspectRatio="4:3"), "aspectRatio", "'16:9' or '9:16'"),
    (ok(resolution="4k"), "resolution", "'720p' or '1080p'"),
    (ok(chain="yes"), "chain", "true or false"),
    (ok(chain=1), "chain", "true or false"),
    (ok(generateAudio=None), "generateAudio", "true or false"),
    (ok(seed=True), "seed", "must be an integer"),
    (ok(seed=1.5), "seed", "must be an integer"),
    (ok(seed=-1), "seed", "at least 0"),
    (ok(seed=MAX_SEED + 1), "seed", f"at most {MAX_SEED}"),
    (ok(negativePrompt=3), "negativePrompt", "must be a string"),
    (ok(negativePrompt="x" * 2001), "negativePrompt", "at most 2000"),
    (ok(requestId=""), "requestId", "1 to 128"),
    (ok(requestId="has space"), "requestId", "1 to 128"),
    (ok(requestId="x" * 129), "requestId", "1 to 128"),
    (ok(requestId="../etc"), "requestId", "1 to 128"),
    (ok(colour="red"), "colour", "not a known field"),
    (ok(segment_seconds=4), "segment_seconds", "not a known field"),
]


@pytest.mark.parametrize(("data", "field", "rule"), BAD)
def test_rejects_invalid_requests_naming_field_and_rule(data: object, field: str, rule: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(data)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert str(caught.value).startswith(f"{field}: ")


def test_reports_every_problem_not_just_the_first() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_request({"prompts": ["", "ok", " "], "segmentSeconds": 3})
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["prompts[0]", "prompts[2]", "segmentSeconds"]


def test_validated_request_round_trips_through_its_stored_form() -> None:
    request = validate_request(ok(seed=7, chain=False, segmentSeconds=4, requestId="r1"))
    assert VideoRequest.model_validate(request.to_json()) == request
    assert request.duration_seconds == 4
    assert request.frame_size == (1280, 720)


def test_deployment_limits_narrow_the_segment_lengths_and_say_why() -> None:
    limits = Limits(segment_seconds=(6, 8), why="with veo-2.0-generate-001 and the Transcoder stitcher")
    assert validate_request(ok(segmentSeconds=6), limits).segment_seconds == 6
    with pytest.raises(InvalidRequest) as caught:
        validate_request(ok(segmentSeconds=4), limits)
    assert caught.value.field == "segmentSeconds"
    assert caught.value.rule == "must be one of 6 or 8 with veo-2.0-generate-001 and the Transcoder stitcher"


def test_a_length_outside_the_limits_is_reported_beside_the_other_problems() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_request({"prompts": [""], "segmentSeconds": 5})
    assert caught.value.problems == [
        ("prompts[0]", "must not be empty or whitespace only"),
        ("segmentSeconds", "must be one of 4, 6 or 8"),
    ]


def test_veo_3_with_the_transcoder_takes_6_and_8_and_says_why_4_is_refused() -> None:
    limits = Limits.of("veo", "veo-3.1-fast-generate-001", "transcoder")
    assert limits.segment_seconds == (6, 8)
    with pytest.raises(InvalidRequest) as caught:
        validate_request(ok(segmentSeconds=4), limits)
    assert caught.value.field == "segmentSeconds"
    assert "Transcoder" in caught.value.rule and "STITCH_BACKEND=ffmpeg" in caught.value.rule


def test_the_in_function_stitcher_takes_every_length_veo_3_makes() -> None:
    assert Limits.of("veo", "veo-3.1-fast-generate-001", "ffmpeg").segment_seconds == (4, 6, 8)


def test_veo_2_takes_what_its_rule_says_and_nothing_else() -> None:
    # The rule a refusal states is the rule that is applied: 4 s names 5, 6, 7 or 8, and 5 s passes.
    limits = Limits.of("veo", "veo-2.0-generate-001", "ffmpeg")
    with pytest.raises(InvalidRequest) as caught:
        validate_request(ok(segmentSeconds=4), limits)
    assert caught.value.rule == "must be one of 5, 6, 7 or 8 with veo-2.0-generate-001"
    for seconds in (5, 6, 7, 8):
        assert validate_request(ok(segmentSeconds=seconds), limits).segment_seconds == seconds


def test_a_stored_veo_2_request_reads_back_without_the_limits() -> None:
    request = validate_request(ok(segmentSeconds=5), Limits.of("veo", "veo-2.0-generate-001", "transcoder"))
    assert VideoRequest.model_validate(request.to_json()).segment_seconds == 5


def test_the_preview_renderer_takes_the_request_rules_alone() -> None:
    assert Limits.of("preview", "veo-2.0-generate-001", "ffmpeg").segment_seconds == (4, 6, 8)


@pytest.mark.parametrize(
    ("model", "allowed"),
    [
        ("veo-3.1-fast-generate-001", (4, 6, 8)),
        ("veo-3.0-generate-001", (4, 6, 8)),
        ("veo-2.0-generate-001", (5, 6, 7, 8)),
    ],
)
def test_each_veo_model_has_its_own_durations(model: str, allowed: tuple[int, ...]) -> None:
    assert model_segment_seconds(model) == allowed
