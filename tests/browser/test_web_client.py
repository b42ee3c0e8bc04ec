"""The web client in a real browser against ``longform serve``: the Director, the Editor, My jobs,
errors, failures and cancelling, on a desktop and a phone-sized screen."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, expect

from longform.request import VideoRequest
from tests.browser.launcher import FAIL, FAIL_ONCE, FAILURE, SLOW, SLOW_SECONDS
from tests.browser.pages import (
    PLAYBACK,
    SEGMENT_SECONDS,
    cost_brief,
    cost_words,
    current_job_id,
    enter_scenes,
    estimate_words,
    local_estimate,
    local_pricing,
    money,
    open_director,
    playback_result,
    record_playback,
    server_job,
    wait_for_metadata,
    watch_text,
)

Shot = Callable[..., Path]


def watch_progress(page: Page) -> None:
    """Record every value the progress bar is given, however briefly it holds it."""
    page.evaluate(
        """() => {
            const bar = document.getElementById("progress");
            window.progressSeen = [Number(bar.getAttribute("aria-valuenow"))];
            new MutationObserver(() => window.progressSeen.push(Number(bar.getAttribute("aria-valuenow"))))
                .observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
        }"""
    )


def status_history(page: Page) -> list[str]:
    return page.locator("#status-log li").all_inner_texts()


def test_two_prompts_become_a_video_with_live_progress(page: Page, served: str, screenshot: Shot) -> None:
    prompts = ["A red fox runs through snow at dawn", "The fox leaps over a frozen stream"]
    open_director(page, served)
    screenshot(page, "empty")
    enter_scenes(page, prompts)
    # The server's estimate before Generate: Python's Pricing.estimate of this request, to the cent.
    expected = local_estimate({"prompts": prompts, "segmentSeconds": SEGMENT_SECONDS})
    expect(page.locator("#estimate")).to_have_text(f"Video length: 8 s (2 × 4 s). {estimate_words(expected)}")
    screenshot(page, "ready")
    watch_progress(page)
    watch_text(page, "job-cost")

    answers = record_playback(page)
    page.get_by_role("button", name="Generate").click()

    status = page.locator("#status")
    expect(status).to_have_text("Completed", timeout=60_000)
    history = status_history(page)
    assert any("Imaginating Scene... scene 1 of 2" in line for line in history), history
    assert any("Imaginating Scene... scene 2 of 2" in line for line in history), history
    assert any("Stitching Masterpiece..." in line for line in history), history
    seen = page.evaluate("window.progressSeen")
    assert seen == sorted(seen), f"progress went down: {seen}"
    assert seen[-1] == 100 and any(0 < value < 100 for value in seen), seen
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("aria-valuetext", "100%, Completed")
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()

    video = page.locator("#final-video")
    duration = wait_for_metadata(video)
    assert abs(duration - 2 * SEGMENT_SECONDS) < 0.1, duration
    # The player plays the link get_playback_urls gave once the job was complete, not the job's own.
    assert answers, "the page never called get_playback_urls"
    last = playback_result(answers[-1])
    assert last["jobId"] == current_job_id(page) and last["videoUrl"], last
    assert video.get_attribute("src") == last["videoUrl"]
    link = page.get_by_role("link", name="Download the video")
    assert link.get_attribute("href") == video.get_attribute("src")
    assert link.get_attribute("download")

    # What it cost: the job's stored cost, its estimate the one shown before Generate.
    cost = server_job(served, current_job_id(page))["cost"]
    assert cost["estimateUsd"] == expected.estimate_usd, (cost, expected)
    assert cost["totalUsd"] > 0 and cost["stitchUsd"] > 0, cost
    expect(page.locator("#job-cost")).to_have_text(cost_words(cost, final=True))
    seen = page.evaluate("window.textsSeen['job-cost']")
    assert any(text.startswith(f"Spent so far: {money(0)} ") for text in seen), seen  # the trigger's answer on
    assert seen[-1] == cost_words(cost, final=True), seen
    screenshot(page, "completed")


def test_editor_lists_the_segments_in_order_and_keeps_the_job(page: Page, served: str, screenshot: Shot) -> None:
    prompts = ["A lighthouse in a storm", "Morning calm over the same sea"]
    open_director(page, served)
    # Every link get_playback_urls answers gets a mark (the file server ignores the query): a
    # player whose src has the mark took it from the callable's answer, and from which one.
    answered: list[dict[str, Any]] = []

    def mark_links(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        mark = f"?answer={len(answered) + 1}"
        result = body["result"]
        result["videoUrl"] = result["videoUrl"] and result["videoUrl"] + mark
        for segment in result["segments"]:
            segment["url"] = segment["url"] and segment["url"] + mark
        answered.append(result)
        route.fulfill(response=response, json=body)

    page.route(f"**{PLAYBACK}", mark_links)
    enter_scenes(page, prompts)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    job_id = current_job_id(page)

    page.get_by_role("button", name="Editor").click()
    segments = page.locator("#segments > li")
    expect(segments).to_have_count(2)
    for i, prompt in enumerate(prompts):
        expect(segments.nth(i).locator("h3")).to_have_text(f"Scene {i + 1}")
        expect(segments.nth(i).locator(".segment-prompt")).to_have_value(prompt)  # a card: its prompt edited in place
        expect(segments.nth(i).locator(".segment-status")).to_have_text("Status: completed")
        preview = segments.nth(i).get_by_label(f"Scene {i + 1} preview")
        assert abs(wait_for_metadata(preview) - SEGMENT_SECONDS) < 0.1
    final = page.locator("#editor-final")
    expect(final).to_be_visible()
    assert abs(wait_for_metadata(final) - 2 * SEGMENT_SECONDS) < 0.1
    # The previews and the final video play the links of the callable's last answer.
    last = answered[-1]
    assert last["jobId"] == job_id
    sources = page.locator("#segments video").evaluate_all("videos => videos.map(v => v.getAttribute('src'))")
    assert sources == [segment["url"] for segment in last["segments"]], (sources, last)
    assert all(source.endswith(f"?answer={len(answered)}") for source in sources), sources
    assert final.get_attribute("src") == last["videoUrl"]
    cost = server_job(served, job_id)["cost"]
    expect(page.locator("#editor-cost")).to_have_text(cost_words(cost, final=True))
    screenshot(page, "editor")

    page.get_by_role("button", name="Director").click()  # the same job, still there
    expect(page.locator("#status")).to_have_text("Completed")
    assert current_job_id(page) == job_id

    page.get_by_role("button", name="My jobs").click()
    item = page.locator(f'#job-list li[data-job-id="{job_id}"]')
    expect(item.locator(".badge")).to_have_text("completed")
    expect(item.locator(".job-cost")).to_have_text(cost_brief(cost))
    screenshot(page, "my-jobs")
    asked_before = len(answered)
    item.get_by_role("button", name="Open in Editor").click()
    expect(page.locator("#editor")).to_be_visible()
    expect(page.locator("#segments .segment-prompt").first).to_have_value(prompts[0])
    assert current_job_id(page) == job_id
    # Opened again: fresh links, asked for once.
    expect(page.locator("#segments video").first).to_have_attribute("src", re.compile(rf"\?answer={asked_before + 1}$"))
    assert len(answered) == asked_before + 1


def test_invalid_request_shows_the_error_beside_its_field(page: Page, served: str, screenshot: Shot) -> None:
    open_director(page, served)
    enter_scenes(page, ["A quiet forest", "   "])

    page.get_by_role("button", name="Generate").click()

    error = page.locator("#prompt-1-error")
    expect(error).to_have_text("must not be empty or whitespace only")
    expect(page.get_by_label("Scene 2", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Scene 2", exact=True)).to_be_focused()
    expect(page.locator("#prompt-0-error")).to_be_hidden()
    expect(page.locator("#job")).to_be_hidden()  # no job was made
    screenshot(page, "invalid")

    page.get_by_label("Scene 2", exact=True).fill("Sunlight through the trees")
    expect(error).to_be_hidden()


def test_failed_job_shows_its_reason_and_offers_retry(page: Page, served_scripted: str, screenshot: Shot) -> None:
    open_director(page, served_scripted)
    enter_scenes(page, ["A calm harbour", f"{FAIL} a storm breaks"])

    page.get_by_role("button", name="Generate").click()

    expect(page.locator("#status")).to_contain_text("Failed:", timeout=60_000)
    expect(page.locator("#job-error")).to_contain_text(f"{FAILURE} on scene 2")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.locator("#result")).to_be_hidden()
    # What it spent: scene 1's generation, less than the estimate (scene 2 and the stitch were not made).
    job = server_job(served_scripted, current_job_id(page))
    cost, request = job["cost"], VideoRequest.model_validate(job["request"])
    pricing = local_pricing()
    assert cost["scenesUsd"] == pricing.scene_usd(request) > 0, cost  # one generation of one scene
    assert (cost["stitchUsd"], cost["totalUsd"]) == (0, cost["scenesUsd"]), cost
    assert cost["estimateUsd"] == pricing.estimate(request).estimate_usd > cost["totalUsd"], cost
    expect(page.locator("#job-cost")).to_have_text(cost_words(cost, final=True))
    screenshot(page, "failed")

    page.get_by_role("button", name="Editor").click()
    segments = page.locator("#segments > li")
    expect(segments.nth(0).locator(".segment-status")).to_have_text("Status: completed")
    expect(segments.nth(1).locator(".segment-status")).to_contain_text(f"Status: failed: {FAILURE}")
    expect(page.locator("#editor-cost")).to_have_text(cost_words(cost, final=True))


def test_retry_resumes_the_failed_job_in_place_making_only_the_missing_scene(
    page: Page, served_scripted: str, screenshot: Shot
) -> None:
    open_director(page, served_scripted)
    enter_scenes(page, ["A quiet street", f"{FAIL_ONCE} rain begins"])
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_contain_text("Failed:", timeout=60_000)
    job_id = current_job_id(page)

    page.get_by_role("button", name="Retry").click()

    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    assert current_job_id(page) == job_id  # the same job, continued
    job = server_job(served_scripted, job_id)
    assert [s["attempts"] for s in job["segments"]] == [1, 2]  # scene 1 was not made again
    assert len(job["resumes"]) == 1
    screenshot(page, "resumed")


def test_cancel_stops_a_running_job(page: Page, served_scripted: str, screenshot: Shot) -> None:
    open_director(page, served_scripted)
    enter_scenes(page, [f"{SLOW} scene one", f"{SLOW} scene two", f"{SLOW} scene three"])

    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_contain_text("Imaginating Scene... scene 1 of 3")
    screenshot(page, "generating")
    page.get_by_role("button", name="Cancel").click()

    expect(page.locator("#status")).to_have_text("Cancelled", timeout=30_000)
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    screenshot(page, "cancelled")
    time.sleep(2 * SLOW_SECONDS)  # long enough for another scene, had the run gone on
    job = server_job(served_scripted, current_job_id(page))
    assert job["status"] == "cancelled"
    segments = job["segments"]
    assert isinstance(segments, list)
    assert segments[-1]["status"] == "cancelled" and segments[-1]["attempts"] == 0, segments
    # What it spent before it stopped, as stored once nothing more can change.
    expect(page.locator("#job-cost")).to_have_text(cost_words(job["cost"], final=True))


def test_editor_shows_the_scenes_a_cancelled_job_did_not_make(
    page: Page, served_scripted: str, screenshot: Shot
) -> None:
    prompts = [f"{SLOW} dawn over the dunes", f"{SLOW} a caravan sets out", f"{SLOW} night falls on the camp"]
    open_director(page, served_scripted)
    enter_scenes(page, prompts)
    page.get_by_role("button", name="Generate").click()
    # Scene 1 is made; scene 2 takes SLOW_SECONDS to start: cancel while it does.
    expect(page.locator("#status")).to_contain_text("Imaginating Scene... scene 2 of 3", timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("Cancelled", timeout=30_000)

    page.get_by_role("button", name="Editor").click()
    segments = page.locator("#segments > li")
    expect(segments).to_have_count(3)
    expect(segments.nth(0).locator(".segment-status")).to_have_text("Status: completed")
    for i in (1, 2):
        expect(segments.nth(i).locator(".segment-prompt")).to_have_value(prompts[i])
        expect(segments.nth(i).locator(".segment-status")).to_have_text("Status: cancelled")
        expect(segments.nth(i).locator(".segment-none")).to_have_text("Not made: the job was cancelled first.")
        expect(segments.nth(i).get_by_label(f"Scene {i + 1} preview")).to_be_hidden()
    statuses = page.locator("#segments .segment-status").all_inner_texts()
    assert not any("pending" in status for status in statuses), statuses
    expect(page.locator("#editor-final-none")).to_have_text("No video: the job cancelled.")

    # A cancelled scene looks like neither a pending nor a failed one (nor a completed one).
    looks = page.evaluate(
        """() => {
            const list = document.getElementById("segments");
            const look = (status) => {
                const item = document.createElement("li");
                item.className = "segment";
                item.dataset.status = status;
                item.innerHTML = '<p class="segment-status">Status</p>';
                list.append(item);
                const card = getComputedStyle(item), text = getComputedStyle(item.firstChild);
                const look = {
                    text: `${text.color} ${text.fontWeight}`,
                    card: `${card.borderTopStyle} ${card.borderTopColor} ${card.backgroundColor}`,
                };
                item.remove();
                return look;
            };
            return Object.fromEntries(["pending", "failed", "completed", "cancelled"].map(s => [s, look(s)]));
        }"""
    )
    for other in ("pending", "failed", "completed"):
        assert looks["cancelled"]["text"] != looks[other]["text"], looks
        assert looks["cancelled"]["card"] != looks[other]["card"], looks  # the card too, not only the words
    screenshot(page, "editor")
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "editor-phone")

    segments_kept = server_job(served_scripted, current_job_id(page))["segments"]
    assert isinstance(segments_kept, list)
    assert [s["status"] for s in segments_kept] == ["completed", "cancelled", "cancelled"], segments_kept


def expect_form(page: Page, prompts: list[str], settings: dict[str, str | bool]) -> None:
    """The Director's form holds exactly these scenes, in order, and these settings."""
    expect(page.locator("#prompts textarea")).to_have_count(len(prompts))
    for i, prompt in enumerate(prompts):
        expect(page.get_by_label(f"Scene {i + 1}", exact=True)).to_have_value(prompt)
    for label, value in settings.items():
        control = page.get_by_label(label, exact=True)
        if isinstance(value, bool):
            (expect(control).to_be_checked if value else expect(control).not_to_be_checked)()
        else:
            expect(control).to_have_value(value)


def test_open_in_director_loads_the_jobs_scenes_and_settings(page: Page, served: str, screenshot: Shot) -> None:
    prompts = ["A paper boat drifts down a gutter", "The boat reaches a storm drain"]
    job_settings: dict[str, str | bool] = {
        "Segment length": "6",
        "Aspect ratio": "9:16",
        "Resolution": "720p",
        "Chain scenes": False,
        "Audio": False,
    }
    open_director(page, served)
    enter_scenes(page, prompts, segment_seconds=6)
    page.get_by_label("Aspect ratio").select_option("9:16")
    page.get_by_label("Chain scenes").uncheck()
    page.get_by_label("Audio").uncheck()
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    job_id = current_job_id(page)
    request = server_job(served, job_id)["request"]
    assert isinstance(request, dict)
    assert request == {  # what the job keeps and the page receives: the fields the form has
        "prompts": prompts,
        "segmentSeconds": 6,
        "aspectRatio": "9:16",
        "resolution": "720p",
        "chain": False,
        "generateAudio": False,
        "requestId": request["requestId"],
    }, request

    # A new visit, with something else in every field of the form.
    page.goto(served)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#job")).to_be_hidden()
    enter_scenes(page, ["Something else entirely"], segment_seconds=4)
    page.get_by_label("Resolution").select_option("1080p")
    expect_form(
        page,
        ["Something else entirely"],
        {"Segment length": "4", "Aspect ratio": "16:9", "Resolution": "1080p", "Chain scenes": True, "Audio": True},
    )

    page.get_by_role("button", name="My jobs").click()
    item = page.locator(f'#job-list li[data-job-id="{job_id}"]')
    open_button = item.get_by_role("button", name="Open in Director")
    open_button.focus()
    page.keyboard.press("Enter")

    expect(page.locator("#director")).to_be_visible()
    expect(page.get_by_role("heading", name="Director")).to_be_focused()  # not lost with the hidden button
    expect_form(page, prompts, job_settings)
    expect(page.locator("#estimate")).to_contain_text("Video length: 12 s (2 × 6 s)")
    loaded = local_estimate(request)  # 12 s without audio, 9:16
    expect(page.locator("#estimate")).to_contain_text(estimate_words(loaded))
    expect(page.locator("#status")).to_have_text("Completed")  # the job beside its form
    assert page.evaluate("location.hash") == f"#director/{job_id}"
    screenshot(page, "loaded")

    # Through the address: a reload of #director/JOB_ID loads the same.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect_form(page, prompts, job_settings)
    expect(page.locator("#status")).to_have_text("Completed")

    # Edit a scene and Generate again: the new job has the loaded settings and the edit.
    page.get_by_label("Scene 2", exact=True).fill("The boat sails out to sea")
    page.get_by_role("button", name="Generate").click()
    expect(page).not_to_have_url(f"{served}#director/{job_id}")  # a new job…
    expect(page.locator("#status-log li").last).to_have_text("100% — Completed", timeout=60_000)  # …made
    again = server_job(served, current_job_id(page))["request"]
    assert isinstance(again, dict)
    assert again == {**request, "prompts": [prompts[0], "The boat sails out to sea"], "requestId": again["requestId"]}
    assert again["requestId"] != request["requestId"]


def test_every_control_is_labelled_and_works_from_the_keyboard(page: Page, served: str) -> None:
    open_director(page, served)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter(c => c.labels.length === 0).map(c => c.id)"""
    )
    assert unlabelled == []
    nameless = page.evaluate(
        """() => [...document.querySelectorAll("button")]
            .filter(b => !(b.getAttribute("aria-label") || b.textContent.trim())).map(b => b.outerHTML)"""
    )
    assert nameless == []
    # Add a scene and move it up with the keyboard alone.
    page.get_by_label("Scene 1", exact=True).fill("first")
    page.get_by_role("button", name="Add scene").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Scene 2", exact=True)).to_be_focused()
    page.keyboard.type("second")
    page.keyboard.press("Tab")  # to "Move scene 2 up"
    expect(page.get_by_role("button", name="Move scene 2 up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Scene 1", exact=True)).to_have_value("second")
    expect(page.get_by_label("Scene 2", exact=True)).to_have_value("first")
    # Paste many at once.
    page.get_by_text("Paste many scenes").click()
    page.get_by_label("Scenes, one per line").fill("third\n\nfourth\n")
    page.get_by_role("button", name="Add these scenes").click()
    expect(page.locator("#prompts textarea")).to_have_count(4)
    expect(page.get_by_label("Scene 4", exact=True)).to_have_value("fourth")
    page.get_by_role("button", name="Remove scene 1").click()
    expect(page.get_by_label("Scene 1", exact=True)).to_have_value("first")
    expect(page.locator("#estimate")).to_contain_text("Video length: 24 s (3 × 8 s)")


def test_phone_sized_screen_has_no_sideways_scrolling(page: Page, served: str, screenshot: Shot) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    open_director(page, served)
    enter_scenes(page, ["A narrow street at night", "Rain on the window"])
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "completed")
    page.get_by_role("button", name="Editor").click()
    expect(page.locator("#segments > li")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "editor")
