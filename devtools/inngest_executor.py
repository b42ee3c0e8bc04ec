"""A small stand-in for Inngest's executor (the Inngest dev server cannot be installed here).

It speaks the SDK's HTTP protocol: POST ``?fnId=<app>-<fn>&stepId=<id>`` with the run's context,
event and memoized step results; the SDK answers 206 with step ops (StepRun with its result,
Sleep, StepPlanned for parallel branches) to memoize before calling again, 200 with the
function's result, or an error status. Steps are keyed on the wire by the SHA-1 of their id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

# post(fn_id, body, step) → (status, json)
Post = Callable[[str, dict[str, Any], str], tuple[int, Any]]


def step_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def run_request(
    event: dict[str, Any],
    steps: dict[str, Any],
    attempt: int = 0,
    run_id: str = "01JRUN",
    max_attempts: int | None = None,
    stack: list[str] | None = None,
) -> dict[str, Any]:
    """The body of one call: the run's context, its event and every memoized step result."""
    ctx: dict[str, Any] = {
        "attempt": attempt,
        "run_id": run_id,
        "disable_immediate_execution": False,
        "stack": {"stack": list(stack or []), "current": len(stack or [])},
    }
    if max_attempts is not None:  # tells the SDK which attempt is the last (StepFailed, not StepError)
        ctx["max_attempts"] = max_attempts
    return {
        "ctx": ctx,
        "event": event,
        "events": [event],
        "steps": steps,
        "use_api": False,
    }


def drive(post: Post, fn_id: str, event: dict[str, Any], limit: int = 300) -> tuple[int, Any]:
    """Play the executor for one run: memoize step results, run planned steps one by one
    (targeted by stepId), treat sleeps as over, until the function answers anything but 206."""
    steps: dict[str, Any] = {}
    planned: list[str] = []
    for _ in range(limit):
        status, body = post(fn_id, run_request(event, steps), planned.pop(0) if planned else "step")
        if status != 206:
            return status, body
        for op in body:
            if op["op"] == "StepRun":
                steps[op["id"]] = {"data": op.get("data")}
            elif op["op"] == "Sleep":
                steps[op["id"]] = None
            elif op["op"] == "StepPlanned":
                planned.append(op["id"])
            else:
                raise AssertionError(f"unexpected op {op}")
    raise AssertionError(f"the run did not end after {limit} requests")
