"""What the browser tests do on the page and ask the server, shared by the test modules (and
conftest.py, which imports it without Playwright installed: Playwright is imported where used)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response

SEGMENT_SECONDS = 4
TIGHT_SECONDS_PER_DAY = 20  # the daily budget of the served_tight_budget server: small enough to run out
PLAYBACK = "/get_playback_urls"


@dataclass(frozen=True)
class Served:
    """A server a test has to itself (conftest's served_alone)."""

    url: str  # the page
    data_dir: Path  # the server's --data-dir: its SQLite jobs and its blob folder


def open_director(page: Page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#who")).to_contain_text("Local mode")


def enter_scenes(page: Page, prompts: list[str], segment_seconds: int = SEGMENT_SECONDS) -> None:
    """Type each prompt into its own scene, adding scenes with the button, as a person would."""
    for i, prompt in enumerate(prompts):
        if i > 0:
            page.get_by_role("button", name="Add scene").click()
        page.get_by_label(f"Scene {i + 1}", exact=True).fill(prompt)
    page.get_by_label("Segment length").select_option(str(segment_seconds))


def generate_and_finish(page: Page, prompts: list[str]) -> str:
    """Enter the scenes, Generate, wait until the job completes; the job's id."""
    from playwright.sync_api import expect

    enter_scenes(page, prompts)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    return current_job_id(page)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def server_jobs(url: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = get_json(url + "__/longform/jobs")["jobs"]
    return jobs


def server_job(url: str, job_id: str) -> dict[str, Any]:
    return next(job for job in server_jobs(url) if job["jobId"] == job_id)


def server_usage(url: str) -> dict[str, Any]:
    usage: dict[str, Any] = get_json(url + "__/longform/usage")
    return usage


def usage_line(usage: dict[str, Any]) -> str:
    """The budget line the page shows for the server's /__/longform/usage."""
    return f"Today: {usage['usedSeconds']:,} s used, {usage['leftSeconds']:,} s left of {usage['limitSeconds']:,} s"


def current_job_id(page: Page) -> str:
    return str(page.evaluate("location.hash.split('/')[1]"))


def is_playback(response: Response) -> bool:
    return response.url.endswith(PLAYBACK)


def record_playback(page: Page) -> list[Response]:
    """Every answer to get_playback_urls the page receives from now on, in order."""
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response) if is_playback(response) else None)
    return answers


def playback_result(response: Response) -> dict[str, Any]:
    result: dict[str, Any] = response.json()["result"]
    return result


def wait_for_metadata(video: Locator) -> float:
    """Wait until the <video> (a Locator) knows its duration, loading its src; the duration."""
    video.evaluate(
        "v => (v.readyState >= 1 && !v.error)"
        " || new Promise(ok => v.addEventListener('loadedmetadata', ok, {once: true}))"
    )
    return float(video.evaluate("v => v.duration"))
