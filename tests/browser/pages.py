"""What the browser tests do on the page and ask the server, shared by the test modules (and
conftest.py, which imports it without Playwright installed: Playwright is imported where used)."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longform.cli import _money
from longform.config import Settings
from longform.prices import Cost, Pricing
from longform.request import VideoRequest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response

SEGMENT_SECONDS = 4
TIGHT_SECONDS_PER_DAY = 20  # the daily budget of the served_tight_budget server: small enough to run out
# The served_priced server's PRICE_TABLE: other Veo prices, read on another day, and a dearer Transcoder.
PRICE_TABLE = json.dumps(
    {
        "veo": {"veo-3.1-fast-generate-001": {"withAudio": 0.37, "withoutAudio": 0.21, "asOf": "2027-03-04"}},
        "transcoder": {"hd": 0.09},
    }
)
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


# -- what things cost ------------------------------------------------------------------------------------

STITCHES = {"transcoder": "the Transcoder stitch", "ffmpeg": "the in-function stitch"}


def money(amount: float) -> str:
    """Dollars as the CLI writes them ("$1.20", "$0.0040"), which the page follows."""
    return _money(amount)


def local_pricing(env: Mapping[str, str] | None = None) -> Pricing:
    """How a ``longform serve`` started with ``env`` over this environment prices its jobs: on
    VEO_MODEL with the Transcoder stitch (bootstrap.local), PRICE_TABLE over the table, nothing billed."""
    settings = Settings.from_env({**os.environ, **(env or {})}, only={"price_table", "veo_model"})
    return Pricing(settings.prices, settings.veo_model, "transcoder", estimated=True)


def local_estimate(request: dict[str, Any], env: Mapping[str, str] | None = None) -> Cost:
    """Python's estimate of ``request`` (camelCase, as the page sends it) by such a server."""
    return local_pricing(env).estimate(VideoRequest.model_validate(request))


def estimate_words(cost: Cost) -> str:
    """What the Director says of the estimate before Generate (after the video's length)."""
    billed = "priced as on Veo, nothing is billed here" if cost.estimated else "the bill counts what is generated"
    return (
        f"Estimated cost: {money(cost.estimate_usd)} with {cost.priced_as} and {STITCHES[cost.stitch]}, "
        f"at the prices as of {cost.prices_as_of} (an estimate: {billed})."
    )


def cost_words(cost: dict[str, Any], final: bool = True) -> str:
    """What the Director and the Editor say of a job's ``cost`` (the job's JSON)."""
    spent = (
        f"{money(cost['totalUsd'])} (scenes {money(cost['scenesUsd'])}, stitch {money(cost['stitchUsd'])})"
        f" of {money(cost['estimateUsd'])} estimated"
    )
    billed = "Priced as on Veo, nothing billed:" if cost["estimated"] else "Billed on"
    how = f"{cost['pricedAs']} and {STITCHES[cost['stitch']]}, at the prices as of {cost['pricesAsOf']}"
    return f"{'Spent' if final else 'Spent so far'}: {spent}. {billed} {how}."


def cost_brief(cost: dict[str, Any]) -> str:
    """What My jobs says of a finished job's ``cost``."""
    spent = f"{money(cost['totalUsd'])} spent of {money(cost['estimateUsd'])} estimated"
    return f"{spent} (priced as on Veo, nothing billed)" if cost["estimated"] else spent


def watch_text(page: Page, element_id: str) -> None:
    """Record every text the element is given in ``window.textsSeen[element_id]``."""
    page.evaluate(
        """(id) => {
            const element = document.getElementById(id);
            window.textsSeen ??= {};
            const seen = (window.textsSeen[id] = [element.textContent]);
            new MutationObserver(() => seen.push(element.textContent))
                .observe(element, { childList: true, characterData: true, subtree: true });
        }""",
        element_id,
    )
