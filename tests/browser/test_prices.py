"""The estimate before Generate comes from the server's prices (prices.json: the table in effect
with PRICE_TABLE over it), and says so when they cannot be read; what a job cost is the server's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from longform.local_server import published_prices
from tests.browser.pages import (
    PRICE_TABLE,
    cost_words,
    current_job_id,
    enter_scenes,
    estimate_words,
    get_json,
    local_estimate,
    local_pricing,
    money,
    open_director,
    server_job,
)

Shot = Callable[..., Path]
PROMPTS = ["A tram climbs a hill at dusk", "The tram reaches the top", "Lights come on below"]


def fill(page: Page) -> dict[str, object]:
    """Three 6 s scenes, portrait 1080p, no audio; the request as the page sends it."""
    enter_scenes(page, PROMPTS, segment_seconds=6)
    page.get_by_label("Aspect ratio").select_option("9:16")
    page.get_by_label("Resolution").select_option("1080p")
    page.get_by_label("Audio").uncheck()
    return {
        "prompts": PROMPTS,
        "segmentSeconds": 6,
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "generateAudio": False,
    }


def test_price_table_changes_the_estimate_the_page_shows_and_the_jobs_cost(
    page: Page, served: str, served_priced: str, screenshot: Shot
) -> None:
    priced = {"PRICE_TABLE": PRICE_TABLE}
    # The server publishes the prices it estimates with, PRICE_TABLE laid over the table.
    assert get_json(served_priced + "prices.json") == published_prices(local_pricing(priced))
    assert get_json(served + "prices.json") == published_prices(local_pricing())

    open_director(page, served)
    request = fill(page)
    default = local_estimate(request)
    expect(page.locator("#estimate")).to_contain_text(estimate_words(default))

    open_director(page, served_priced)
    request = fill(page)
    expected = local_estimate(request, priced)
    assert money(expected.estimate_usd) != money(default.estimate_usd), (expected, default)
    estimate = page.locator("#estimate")
    expect(estimate).to_have_text(f"Video length: 18 s (3 × 6 s). {estimate_words(expected)}")
    expect(estimate).to_contain_text("at the prices as of 2027-03-04")
    screenshot(page, "priced")

    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    cost = server_job(served_priced, current_job_id(page))["cost"]
    assert cost["estimateUsd"] == expected.estimate_usd and cost["pricesAsOf"] == "2027-03-04", cost
    expect(page.locator("#job-cost")).to_have_text(cost_words(cost, final=True))


def test_without_its_prices_the_page_shows_no_estimate(page: Page, served: str) -> None:
    page.route("**/prices.json", lambda route: route.abort())
    open_director(page, served)
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text("No cost estimate: the prices could not be loaded (")
    expect(estimate).not_to_contain_text("$")

    page.unroute("**/prices.json")

    def no_price_for_the_model(route: Route) -> None:
        route.fulfill(json={"pricedAs": "veo-9-generate-001", "table": {"veo": {}}})

    page.route("**/prices.json", no_price_for_the_model)
    open_director(page, served)
    expect(estimate).to_contain_text(
        "No cost estimate: the prices could not be loaded (it has no price for veo-9-generate-001)."
    )
    # Generate still works: the server prices the job, and the page shows that.
    enter_scenes(page, ["A single scene"])
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    cost = server_job(served, current_job_id(page))["cost"]
    expect(page.locator("#job-cost")).to_have_text(cost_words(cost, final=True))
