"""Today's video time in the Director: the line that counts it, and Generate refused when a job
would not fit what is left (RESOURCE_EXHAUSTED with the budget's details)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.launcher import SLOW, SLOW_SECONDS
from tests.browser.pages import (
    SEGMENT_SECONDS,
    TIGHT_SECONDS_PER_DAY,
    current_job_id,
    enter_scenes,
    money,
    open_director,
    server_job,
    server_jobs,
    server_usage,
    usage_line,
)

Shot = Callable[..., Path]


def spent_line(usage: dict[str, Any]) -> str:
    """The line beside the budget: the dollars the day's jobs spent (the ledger's spentUsd)."""
    return f"Spent today: {money(usage['spentUsd'])} (priced as on Veo, nothing billed)"


def test_used_and_left_today_follow_jobs_and_cancels(page: Page, served_scripted: str, screenshot: Shot) -> None:
    before = server_usage(served_scripted)
    open_director(page, served_scripted)
    line = page.locator("#usage")
    spent = page.locator("#spent-today")
    expect(line).to_have_text(usage_line(before))  # the server's limit, whatever other tests used
    expect(line).to_have_attribute("aria-live", "polite")
    expect(spent).to_have_text(spent_line(before))

    # A 2-scene job: its seconds are counted from Generate on.
    enter_scenes(page, ["A kite climbs over the beach", "The kite's string snaps"])
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    after_job = server_usage(served_scripted)
    assert after_job["usedSeconds"] == before["usedSeconds"] + 2 * SEGMENT_SECONDS, (before, after_job)
    expect(line).to_have_text(usage_line(after_job))
    cost = server_job(served_scripted, current_job_id(page))["cost"]
    assert after_job["spentUsd"] == round(before["spentUsd"] + cost["totalUsd"], 6) > 0, (before, after_job, cost)
    expect(spent).to_have_text(spent_line(after_job))
    screenshot(page, "after-job")

    # A 3-scene job cancelled while it makes scene 2: what it did not make comes back.
    page.goto(served_scripted)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    enter_scenes(page, [f"{SLOW} a boat leaves", f"{SLOW} the boat turns", f"{SLOW} the boat comes home"])
    page.get_by_role("button", name="Generate").click()
    reserved = {**after_job, "usedSeconds": after_job["usedSeconds"] + 3 * SEGMENT_SECONDS}
    reserved["leftSeconds"] = reserved["limitSeconds"] - reserved["usedSeconds"]
    expect(line).to_have_text(usage_line(reserved))  # all three scenes are reserved while it runs
    expect(page.locator("#status")).to_contain_text("Imaginating Scene... scene 2 of 3", timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("Cancelled", timeout=30_000)
    time.sleep(2 * SLOW_SECONDS)  # a scene still in flight would have finished by now
    made = sum(s["status"] == "completed" for s in server_job(served_scripted, current_job_id(page))["segments"])
    after_cancel = server_usage(served_scripted)
    assert made < 3
    assert after_cancel["usedSeconds"] == after_job["usedSeconds"] + made * SEGMENT_SECONDS, (after_cancel, made)
    expect(line).to_have_text(usage_line(after_cancel))
    expect(spent).to_have_text(spent_line(after_cancel))  # what the cancelled job spent stays spent
    assert after_cancel["spentUsd"] > after_job["spentUsd"], (after_job, after_cancel)
    screenshot(page, "after-cancel")


def test_generate_refused_for_the_daily_budget_says_what_is_left(
    page: Page, served_tight_budget: str, screenshot: Shot
) -> None:
    limit = TIGHT_SECONDS_PER_DAY
    open_director(page, served_tight_budget)
    line = page.locator("#usage")
    expect(line).to_have_text(f"Today: 0 s used, {limit} s left of {limit} s")

    enter_scenes(page, ["A lantern is lit", "The lantern floats away"])  # 8 s: fits
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    job_id = current_job_id(page)
    expect(line).to_have_text(f"Today: 8 s used, {limit - 8} s left of {limit} s")

    # 4 scenes × 4 s = 16 s, with 12 s left: the line says so before Generate, the server refuses.
    page.get_by_role("button", name="Add scene").click()
    page.get_by_label("Scene 3", exact=True).fill("More lanterns rise")
    page.get_by_role("button", name="Add scene").click()
    page.get_by_label("Scene 4", exact=True).fill("The sky fills with lights")
    expect(line).to_contain_text("This video needs 16 s: more than is left today")
    expect(line).to_have_attribute("data-short", "true")
    with page.expect_response(lambda r: r.url.endswith("/trigger_long_form_video_job")) as refused:
        page.get_by_role("button", name="Generate").click()
    assert refused.value.status == 429
    error = refused.value.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"] == {"scope": "user", "limitSeconds": limit, "remainingSeconds": 12, "requestedSeconds": 16}

    message = page.locator("#request-error")
    expect(message).to_be_visible()
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text(
        "Not enough video time left today: this video needs 16 s and you have 12 s left of 20 s a day."
    )
    expect(message).to_contain_text("3 scenes of 4 s would fit.")
    expect(message).not_to_contain_text("request:")  # not the generic error
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    assert current_job_id(page) == job_id  # no new job opened…
    assert [job["jobId"] for job in server_jobs(served_tight_budget)] == [job_id]  # …or made
    expect(line).to_have_text(
        f"Today: 8 s used, {limit - 8} s left of {limit} s. This video needs 16 s: more than is left today"
    )
    screenshot(page, "refused")

    # Cut it to 3 scenes: the line no longer warns, and the refusal of the longer video goes.
    page.get_by_role("button", name="Remove scene 4").click()
    expect(line).to_have_attribute("data-short", "false")
    expect(line).to_have_text(f"Today: 8 s used, {limit - 8} s left of {limit} s")
    expect(message).to_be_hidden()
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "phone")
