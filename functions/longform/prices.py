"""What a job costs: one price table, and the arithmetic of estimates and bills.

Every price is in USD, with the date it was read and its public source; prices change, so a
deployment can replace any of them with the ``PRICE_TABLE`` param (JSON in the shape of
``PriceTable``, merged over the embedded table). The page, the callable and ``longform`` all price
from here.

What counts as spent:

- A scene: every generation that produced a video is billed, seconds × the model's price per
  second (with or without audio) — a video our media check then refused included. Vertex AI's
  pricing page bills generated seconds; it does not say how an operation that ends with an error,
  or a video blocked by the safety filters, is billed, so those are counted as not billed. A
  generation whose start was accepted but whose answer was lost cannot be seen, so it cannot be
  counted either (Veo's ``predictLongRunning`` takes no request id).
- The stitch: the Transcoder bills minutes of output by resolution class (SD below 720p, HD up to
  1080p, UHD above), counted when the stitch succeeds; the in-function stitch (``ffmpeg``) costs
  its function time. Local jobs are priced as if run in the cloud with the default model and the
  Transcoder, and marked ``estimated``: nothing is billed on a laptop.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from .request import VideoRequest

VERTEX_PRICING = "https://cloud.google.com/vertex-ai/generative-ai/pricing"
TRANSCODER_PRICING = "https://cloud.google.com/transcoder/pricing"
RUN_PRICING = "https://cloud.google.com/run/pricing"
CHECKED = "2026-11-29"


class _Prices(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True, frozen=True, extra="forbid"
    )


class VeoPrice(_Prices):
    """USD per second of video a Veo model generates."""

    with_audio: float = Field(ge=0)
    without_audio: float = Field(ge=0)
    as_of: str = CHECKED
    source: str = VERTEX_PRICING

    def per_second(self, audio: bool) -> float:
        return self.with_audio if audio else self.without_audio


class TranscoderPrice(_Prices):
    """USD per minute of Transcoder output, by resolution class (of the shorter side, so a
    vertical 720 × 1280 video is HD like a 1280 × 720 one)."""

    sd: float = Field(ge=0)  # below 720p
    hd: float = Field(ge=0)  # 720p to 1080p
    uhd: float = Field(ge=0)  # above 1080p
    as_of: str = CHECKED
    source: str = TRANSCODER_PRICING

    def per_minute(self, width: int, height: int) -> float:
        side = min(width, height)
        return self.sd if side < 720 else self.hd if side <= 1080 else self.uhd


class FunctionPrice(_Prices):
    """Function time (Cloud Run, on which 2nd-gen functions run): USD per vCPU-second and per
    GiB-second, and the size of the function that stitches."""

    vcpu_second: float = Field(ge=0)
    gib_second: float = Field(ge=0)
    vcpus: float = Field(gt=0)
    gib: float = Field(gt=0)
    as_of: str = CHECKED
    source: str = RUN_PRICING

    def per_second(self) -> float:
        return self.vcpus * self.vcpu_second + self.gib * self.gib_second


class PriceTable(_Prices):
    currency: str = "USD"
    veo: dict[str, VeoPrice]
    transcoder: TranscoderPrice
    function: FunctionPrice

    def veo_price(self, model: str) -> VeoPrice:
        try:
            return self.veo[model]
        except KeyError:
            raise KeyError(f"no price for {model!r} (priced: {', '.join(sorted(self.veo))}); set PRICE_TABLE") from None

    def scene_usd(self, model: str, seconds: int, audio: bool) -> float:
        """One generation of one scene."""
        return usd(seconds * self.veo_price(model).per_second(audio))

    def transcoder_usd(self, video_seconds: float, width: int, height: int) -> float:
        """The Transcoder's bill for a video of that length and size (per minute of output,
        prorated)."""
        return usd(video_seconds / 60 * self.transcoder.per_minute(width, height))

    def function_usd(self, seconds: float) -> float:
        return usd(seconds * self.function.per_second())

    def merged(self, override: str) -> PriceTable:
        """This table with ``override`` (JSON, any part of the table) laid over it."""
        try:
            changes = json.loads(override)
            if not isinstance(changes, dict):
                raise ValueError("must be a JSON object")
            return PriceTable.model_validate(_merge(self.model_dump(by_alias=True), changes))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"is not a price table: {_first_line(exc)}") from None


class Cost(BaseModel):
    """What a job costs, on its document: the estimate made when it was asked for, and what was
    spent as it ran (each scene's billed generations, the stitch, their total)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)

    currency: str = "USD"
    priced_as: str  # the Veo model the scenes are priced as
    stitch: Literal["transcoder", "ffmpeg"]  # the stitch priced
    estimated: bool  # nothing was billed (the preview renderer): priced as if in the cloud
    prices_as_of: str
    estimate_usd: float  # every scene generated once, and the stitch
    scenes_usd: float = 0.0
    stitch_usd: float = 0.0
    total_usd: float = 0.0

    def add_scene(self, amount: float) -> None:
        self.scenes_usd = usd(self.scenes_usd + amount)
        self.total_usd = usd(self.scenes_usd + self.stitch_usd)

    def set_stitch(self, amount: float) -> None:
        self.stitch_usd = usd(amount)
        self.total_usd = usd(self.scenes_usd + self.stitch_usd)


# The in-function stitch's time is not known before it runs: about 0.1 s a minute of video was
# measured (make bench); the estimate allows 1 s (downloads and uploads vary more than the stitch).
ESTIMATED_STITCH_SECONDS_PER_MINUTE = 1.0


@dataclass(frozen=True)
class Pricing:
    """How a deployment prices its jobs: the table, the model its scenes are priced as, its stitch."""

    table: PriceTable
    model: str
    stitch: Literal["transcoder", "ffmpeg"]
    estimated: bool  # True where nothing is billed (the preview renderer)

    def scene_usd(self, request: VideoRequest) -> float:
        """One generation of one scene of ``request``."""
        return self.table.scene_usd(self.model, request.segment_seconds, request.generate_audio)

    def stitch_usd(self, request: VideoRequest, scenes: int, function_seconds: float | None = None) -> float:
        """The stitch of ``scenes`` scenes: Transcoder minutes, or the function's time (given, or
        estimated from the video's length)."""
        video_seconds = scenes * request.segment_seconds
        if self.stitch == "transcoder":
            return self.table.transcoder_usd(video_seconds, *request.frame_size)
        if function_seconds is None:
            function_seconds = video_seconds / 60 * ESTIMATED_STITCH_SECONDS_PER_MINUTE
        return self.table.function_usd(function_seconds)

    def estimate(self, request: VideoRequest, generated: int | None = None) -> Cost:
        """Every scene of ``request`` generated once (or only ``generated`` of them: an edit
        reuses the rest), and the stitch of them all."""
        scenes = len(request.prompts)
        made = scenes if generated is None else generated
        estimate = made * self.scene_usd(request) + self.stitch_usd(request, scenes)
        veo = self.table.veo_price(self.model)
        return Cost(
            currency=self.table.currency,
            priced_as=self.model,
            stitch=self.stitch,
            estimated=self.estimated,
            prices_as_of=veo.as_of,
            estimate_usd=usd(estimate),
        )


def usd(amount: float) -> float:
    """Dollars to a millionth: what is stored and added up (floats, but no float dust)."""
    return round(amount + 0.0, 6) if math.isfinite(amount) else amount


# The embedded table, read on CHECKED from the pages named. Veo: Vertex AI lists Veo 3 and 3.1
# per second of generated video, with audio and without; 720p and 1080p cost the same.
PRICES = PriceTable(
    veo={
        "veo-3.1-generate-001": VeoPrice(with_audio=0.40, without_audio=0.20),
        "veo-3.1-fast-generate-001": VeoPrice(with_audio=0.15, without_audio=0.10),
        "veo-3.0-generate-001": VeoPrice(with_audio=0.40, without_audio=0.20),
        "veo-3.0-fast-generate-001": VeoPrice(with_audio=0.15, without_audio=0.10),
        "veo-2.0-generate-001": VeoPrice(with_audio=0.50, without_audio=0.50),  # Veo 2 makes no audio
    },
    transcoder=TranscoderPrice(sd=0.015, hd=0.030, uhd=0.060),
    # Tier 1 regions, instance-based billing; the stitch function's size (2 vCPU, 2 GiB).
    function=FunctionPrice(vcpu_second=0.000024, gib_second=0.0000025, vcpus=2, gib=2),
)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        return f"{where}: {err['msg']}"
    return str(exc).splitlines()[0]
