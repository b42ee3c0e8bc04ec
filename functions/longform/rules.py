"""A pydantic validation error as the rule a person reads (``must be at least 1``): one wording
for the request's fields and the settings alike; each passes the wordings of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rule_of(err: Any, wording: Mapping[str, str]) -> str:
    """The rule ``err`` (one of ``ValidationError.errors()``) broke; ``wording`` maps an error
    type to fixed words, used first."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind in wording:
        return wording[kind]
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "greater_than":
        return f"must be more than {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx['ge'])}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx['le'])}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    return str(err["msg"])


def _number(value: float) -> str:
    """0.0 reads as 0, 4294967295 as itself (``:g`` would write 4.29497e+09)."""
    return str(int(value)) if float(value).is_integer() else str(value)
