"""The price table and its arithmetic: each figure checked against the table's own numbers."""

from __future__ import annotations

import pytest

from longform.config import Settings
from longform.errors import InvalidSetting
from longform.prices import PRICES, Pricing, usd
from longform.request import VideoRequest, validate_request

FAST = "veo-3.1-fast-generate-001"


def request(prompts: int = 3, **fields: object) -> VideoRequest:
    return validate_request({"prompts": [f"scene {i}" for i in range(prompts)], **fields})


def test_every_price_says_when_it_was_read_and_where() -> None:
    for price in [*PRICES.veo.values(), PRICES.transcoder, PRICES.function]:
        assert price.as_of == "2026-11-29" and price.source.startswith("https://cloud.google.com/")
    assert PRICES.currency == "USD"


@pytest.mark.parametrize(("audio", "per_second"), [(True, "with_audio"), (False, "without_audio")])
def test_a_scene_costs_its_seconds_at_the_models_price(audio: bool, per_second: str) -> None:
    pricing = Pricing(PRICES, FAST, "transcoder", estimated=False)
    asked = request(segmentSeconds=6, generateAudio=audio)
    assert pricing.scene_usd(asked) == pytest.approx(6 * getattr(PRICES.veo[FAST], per_second))


@pytest.mark.parametrize(
    ("aspect", "resolution", "rate"), [("16:9", "720p", "hd"), ("9:16", "720p", "hd"), ("16:9", "1080p", "hd")]
)
def test_the_transcoder_bills_minutes_of_output_by_the_shorter_side(aspect: str, resolution: str, rate: str) -> None:
    pricing = Pricing(PRICES, FAST, "transcoder", estimated=False)
    asked = request(50, segmentSeconds=8, aspectRatio=aspect, resolution=resolution)
    assert pricing.stitch_usd(asked, 50) == pytest.approx(400 / 60 * getattr(PRICES.transcoder, rate))
    assert PRICES.transcoder.per_minute(640, 360) == PRICES.transcoder.sd
    assert PRICES.transcoder.per_minute(3840, 2160) == PRICES.transcoder.uhd


def test_the_in_function_stitch_costs_its_function_time() -> None:
    pricing = Pricing(PRICES, FAST, "ffmpeg", estimated=False)
    per_second = PRICES.function.vcpus * PRICES.function.vcpu_second + PRICES.function.gib * PRICES.function.gib_second
    assert pricing.stitch_usd(request(), 3, function_seconds=12.5) == pytest.approx(usd(12.5 * per_second))
    estimated = pricing.stitch_usd(request(45, segmentSeconds=8), 45)  # 6 minutes of video: 6 s allowed
    assert estimated == pytest.approx(usd(6 * per_second))


def test_the_estimate_is_every_scene_once_and_the_stitch() -> None:
    cost = Pricing(PRICES, FAST, "transcoder", estimated=True).estimate(request(50, segmentSeconds=8))
    expected = 50 * 8 * PRICES.veo[FAST].with_audio + 400 / 60 * PRICES.transcoder.hd
    assert cost.estimate_usd == pytest.approx(expected) and round(expected, 2) == 60.2
    assert (cost.priced_as, cost.stitch, cost.estimated, cost.prices_as_of) == (FAST, "transcoder", True, "2026-11-29")
    assert (cost.scenes_usd, cost.stitch_usd, cost.total_usd) == (0, 0, 0)


def test_what_is_spent_adds_up_without_float_dust() -> None:
    cost = Pricing(PRICES, FAST, "transcoder", estimated=False).estimate(request())
    for _ in range(3):
        cost.add_scene(0.1)
    cost.set_stitch(0.2)
    assert (cost.scenes_usd, cost.stitch_usd, cost.total_usd) == (0.3, 0.2, 0.5)


def test_a_deployment_replaces_any_price_with_the_price_table_param() -> None:
    settings = Settings.from_env({"PRICE_TABLE": '{"veo": {"veo-3.1-fast-generate-001": {"withAudio": 0.2}}}'})
    fast = settings.prices.veo[FAST]
    assert (fast.with_audio, fast.without_audio) == (0.2, PRICES.veo[FAST].without_audio)
    assert settings.prices.transcoder == PRICES.transcoder
    added = '{"veo": {"veo-9-generate-001": {"withAudio": 1, "withoutAudio": 0.5, "asOf": "2027-01-01"}}}'
    assert (
        Settings.from_env({"PRICE_TABLE": added, "VEO_MODEL": "veo-9-generate-001"}).veo_model == "veo-9-generate-001"
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PRICE_TABLE": "[1]"}, "PRICE_TABLE: is not a price table: must be a JSON object"),
        ({"PRICE_TABLE": "{not json"}, "PRICE_TABLE: is not a price table: Expecting property name"),
        (
            {"PRICE_TABLE": '{"transcoder": {"hd": -1}}'},
            "PRICE_TABLE: is not a price table: transcoder.hd: Input should",
        ),
        ({"PRICE_TABLE": '{"veo": {"x": {"withAudio": 1}}}'}, "PRICE_TABLE: is not a price table: veo.x.withoutAudio"),
        ({"VEO_MODEL": "veo-9-generate-001"}, "VEO_MODEL: has no price (priced: veo-2.0-generate-001"),
    ],
)
def test_a_bad_price_table_or_an_unpriced_model_names_the_setting(env: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(words), str(caught.value)
