"""The video request: one validator shared by every entry point (CLI, callable, local server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .errors import InvalidRequest
from .rules import rule_of

MAX_PROMPTS = 50
MAX_PROMPT_CHARS = 2000
MAX_SEED = 4_294_967_295
SEGMENT_SECONDS = (4, 6, 8)  # Veo 3.x, and the preview renderer that stands in for it
VEO_2_SEGMENT_SECONDS = (5, 6, 7, 8)
TRANSCODER_MIN_SECONDS = 5  # every Transcoder input must be at least this long

# Width × height for each (aspectRatio, resolution); the same sizes Veo produces.
FRAME_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("16:9", "720p"): (1280, 720),
    ("9:16", "720p"): (720, 1280),
    ("16:9", "1080p"): (1920, 1080),
    ("9:16", "1080p"): (1080, 1920),
}


Prompt = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=MAX_PROMPT_CHARS)
]


# What a client sends, as every request model reads it: camelCase names only, no unknown field,
# no coercion (a "4" is not 4), and immutable once read.
WIRE = ConfigDict(
    extra="forbid",
    frozen=True,
    strict=True,
    alias_generator=to_camel,
    validate_by_alias=True,
    validate_by_name=False,
    serialize_by_alias=True,
)


class VideoRequest(BaseModel):
    """A validated request. Field names on the wire are camelCase (``segmentSeconds``)."""

    model_config = WIRE

    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)]
    segment_seconds: StrictInt = 8  # one of the deployment's lengths (Limits): checked below
    aspect_ratio: Literal["16:9", "9:16"] = "16:9"
    resolution: Literal["720p", "1080p"] = "720p"
    chain: StrictBool = True
    generate_audio: StrictBool = True
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] | None = None
    negative_prompt: (
        Annotated[str, StringConstraints(strict=True, strip_whitespace=True, max_length=MAX_PROMPT_CHARS)] | None
    ) = None
    request_id: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_-]{1,128}$")] | None = None

    @field_validator("segment_seconds")
    @classmethod
    def _a_length_the_deployment_makes(cls, value: int, info: ValidationInfo) -> int:
        # validate_request passes the deployment's Limits; a stored request (no context) was
        # checked against them when it was made, so any length some model makes is fine then.
        limits = (info.context or {}).get("limits") or _ANY_MODEL
        if value not in limits.segment_seconds:
            raise ValueError(limits.rule())
        return value

    @property
    def frame_size(self) -> tuple[int, int]:
        return FRAME_SIZES[(self.aspect_ratio, self.resolution)]

    @property
    def duration_seconds(self) -> int:
        return self.segment_seconds * len(self.prompts)

    def to_json(self) -> dict[str, Any]:
        """The request as stored on the job: camelCase, unset optionals left out."""
        return self.model_dump(exclude_none=True)


def model_segment_seconds(model: str) -> tuple[int, ...]:
    """The durations a Veo model accepts: Veo 2 takes 5–8 s, Veo 3.x 4, 6 or 8 s."""
    return VEO_2_SEGMENT_SECONDS if model.startswith("veo-2") else SEGMENT_SECONDS


@dataclass(frozen=True)
class Limits:
    """What the deployment can make: the segment lengths the video model accepts and the
    stitcher can join, and why (for the error message)."""

    segment_seconds: tuple[int, ...] = SEGMENT_SECONDS
    why: str = ""

    @classmethod
    def of(cls, video_model: str, veo_model: str, stitch_backend: str) -> Limits:
        """The lengths a deployment makes: the model's, and ≥ 5 s for the Transcoder."""
        veo = video_model == "veo"
        allowed = model_segment_seconds(veo_model) if veo else SEGMENT_SECONDS
        why = [f"with {veo_model}"] if veo else []
        if stitch_backend == "transcoder":
            allowed = tuple(s for s in allowed if s >= TRANSCODER_MIN_SECONDS)
            why.append(
                "and the Transcoder stitcher, which joins segments of 5 s or more (STITCH_BACKEND=ffmpeg takes 4)"
            )
        return cls(segment_seconds=allowed, why=" ".join(why))

    def rule(self) -> str:
        *most, last = map(str, self.segment_seconds)
        allowed = f"{', '.join(most)} or {last}" if most else last
        return f"must be one of {allowed} {self.why}".rstrip()


_ANY_MODEL = Limits(tuple(sorted(set(SEGMENT_SECONDS) | set(VEO_2_SEGMENT_SECONDS))))


def validate_request(data: Any, limits: Limits | None = None) -> VideoRequest:
    """Return the validated request or raise InvalidRequest naming the field and the rule; every
    problem is reported. ``limits`` are the deployment's (the preview renderer's by default)."""
    return validated(VideoRequest, data, "must be an object with a 'prompts' list", {"limits": limits or Limits()})


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: Any, shape: str, context: dict[str, Any] | None = None) -> Model:
    """``data`` as a ``model``, or InvalidRequest naming each field that breaks a rule (``shape``:
    the rule when ``data`` is not even an object)."""
    if not isinstance(data, dict):
        raise InvalidRequest("request", shape)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = list(dict.fromkeys((_field_name(err["loc"]), _rule(err)) for err in exc.errors()))
        raise InvalidRequest.from_problems(problems) from None


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in ("function-after", "literal", "constrained-str", "str", "int", "none") or "[" in str(part):
            continue  # union branch labels, not field names
        else:
            name += f".{part}" if name else str(part)
    return name or "request"


_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "list_type": "must be a list of strings",
    "bool_type": "must be true or false",
    "int_type": "must be an integer (not a boolean, float or string)",
    "int_from_float": "must be an integer (not a boolean, float or string)",
    "string_pattern_mismatch": "must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'",
    "string_too_short": "must not be empty or whitespace only",
    "model_type": "must be an object",
}


def _rule(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    items = "scene" if err["loc"][:1] == ("scenes",) else "prompt"
    if kind == "list_type" and items == "scene":
        return "must be a list of scenes (objects)"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} {items}"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} {items}s"
    return rule_of(err, _RULES)
