"""The video request: one validator shared by every entry point (CLI, callable, local server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from .errors import InvalidRequest

MAX_PROMPTS = 50
MAX_PROMPT_CHARS = 2000
MAX_SEED = 4_294_967_295
SEGMENT_SECONDS = (4, 6, 8)

# Width × height for each (aspectRatio, resolution); the same sizes Veo produces.
FRAME_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("16:9", "720p"): (1280, 720),
    ("9:16", "720p"): (720, 1280),
    ("16:9", "1080p"): (1920, 1080),
    ("9:16", "1080p"): (1080, 1920),
}


def _one_of_segment_seconds(value: int) -> int:
    # A Literal[4, 6, 8] would let 8.0 through (it compares with ==).
    if value not in SEGMENT_SECONDS:
        raise ValueError("must be one of 4, 6 or 8")
    return value


Prompt = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=MAX_PROMPT_CHARS)
]


class VideoRequest(BaseModel):
    """A validated request. Field names on the wire are camelCase (``segmentSeconds``)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )

    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)]
    segment_seconds: Annotated[StrictInt, AfterValidator(_one_of_segment_seconds)] = 8
    aspect_ratio: Literal["16:9", "9:16"] = "16:9"
    resolution: Literal["720p", "1080p"] = "720p"
    chain: StrictBool = True
    generate_audio: StrictBool = True
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] | None = None
    negative_prompt: (
        Annotated[str, StringConstraints(strict=True, strip_whitespace=True, max_length=MAX_PROMPT_CHARS)] | None
    ) = None
    request_id: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_-]{1,128}$")] | None = None

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
    if model.startswith("veo-2"):
        return (5, 6, 7, 8)
    return SEGMENT_SECONDS


@dataclass(frozen=True)
class Limits:
    """What the deployment can make, beyond the request's own rules: the segment lengths the
    video model accepts and the stitcher can join, and why (for the error message)."""

    segment_seconds: tuple[int, ...] = SEGMENT_SECONDS
    why: str = ""


def validate_request(data: Any, limits: Limits | None = None) -> VideoRequest:
    """Return the validated request or raise InvalidRequest naming the field and the rule."""
    if not isinstance(data, dict):
        raise InvalidRequest("request", "must be an object with a 'prompts' list")
    try:
        request = VideoRequest.model_validate(data)
    except ValidationError as exc:
        problems = list(dict.fromkeys((_field_name(err["loc"]), _rule(err)) for err in exc.errors()))
        raise InvalidRequest.from_problems(problems) from None
    if limits is not None and request.segment_seconds not in limits.segment_seconds:
        allowed = ", ".join(map(str, limits.segment_seconds))
        raise InvalidRequest("segmentSeconds", f"must be one of {allowed} {limits.why}".rstrip())
    return request


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
}


def _rule(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx", {})
    field = err["loc"][0] if err["loc"] else ""
    if kind in _RULES:
        return _RULES[kind]
    if kind == "string_too_short":
        return "must not be empty or whitespace only"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} prompt"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} prompts"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    return f"{field}: {err['msg']}" if not field else str(err["msg"])
