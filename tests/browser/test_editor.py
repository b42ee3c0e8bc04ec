"""The Editor edits a finished job in a real browser against ``longform serve``: a changed prompt
costs one scene, Apply makes version 2 with live progress counting only the scene being made,
version 2 plays, and version 1 still does; the scene cards' other edits work from the keyboard."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Request, Response, expect

from longform.request import VideoRequest
from tests.browser.launcher import SLOW
from tests.browser.pages import (
    SEGMENT_SECONDS,
    current_job_id,
    enter_scenes,
    generate_and_finish,
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
EDIT = "/edit_long_form_video_job"
NO_CHANGES = "No changes yet: edit a prompt, or regenerate, insert, delete or move a scene."


def sent(request: Request) -> dict[str, Any]:
    """The callable's data the page sent."""
    data: dict[str, Any] = json.loads(request.post_data or "{}")["data"]
    return data


def is_edit(dry_run: bool) -> Callable[[Request], bool]:
    return lambda request: request.url.endswith(EDIT) and sent(request).get("dryRun") is dry_run


def asked_version(response: Response) -> int | None:
    version: int | None = sent(response.request).get("version")
    return version


def scene_price(job: dict[str, Any]) -> float:
    """What generating one scene of the job costs on the server's prices (priced as on Veo)."""
    return local_pricing().scene_usd(VideoRequest.model_validate(job["request"]))


def test_edit_one_prompt_pays_for_one_scene_and_both_versions_play(
    page: Page, served_scripted: str, screenshot: Shot
) -> None:
    url = served_scripted
    prompts = ["A lantern is lit in a dark room", "The lantern is carried up the stairs", "The lantern rests on a sill"]
    open_director(page, url)
    answers = record_playback(page)
    job_id = generate_and_finish(page, prompts)  # 3 × 4 s, chained (the Director's default)
    version_1_url = playback_result(answers[-1])["videoUrl"]
    assert version_1_url
    price = scene_price(server_job(url, job_id))
    assert price > 0

    # The finished job in the Editor: its scenes as cards, nothing pending yet.
    page.get_by_role("button", name="Editor").click()
    cards = page.locator("#segments > li")
    expect(cards).to_have_count(3)
    for i, prompt in enumerate(prompts):
        expect(cards.nth(i).get_by_role("heading")).to_have_text(f"Scene {i + 1}")
        expect(page.get_by_label(f"Prompt of scene {i + 1}")).to_have_value(prompt)
        expect(cards.nth(i).locator(".segment-status")).to_have_text("Status: completed")
        assert abs(wait_for_metadata(cards.nth(i).get_by_label(f"Scene {i + 1} preview")) - SEGMENT_SECONDS) < 0.1
    expect(page.locator("#edit-cost")).to_have_text(NO_CHANGES)
    apply = page.get_by_role("button", name="Apply edit")
    expect(apply).to_be_disabled()
    expect(page.locator("#versions")).to_be_hidden()  # one version: nothing to switch to
    screenshot(page, "opened")

    # Change scene 2's prompt: the cost of one scene (a dry run), and of both continuity choices.
    new_prompt = f"{SLOW} The lantern is carried down to the cellar"
    with page.expect_request(is_edit(dry_run=True)) as dry:
        page.get_by_label("Prompt of scene 2").fill(new_prompt)
    assert sent(dry.value)["scenes"] == [{"from": 0}, {"from": 1, "prompt": new_prompt}, {"from": 2}]
    cost = page.locator("#edit-cost")
    expect(cost).to_contain_text(f"Cost of this edit: {money(price)}. ")
    expect(cost).to_have_text(
        f"Cost of this edit: {money(price)}. It makes 1 scene (4 s of video) and reuses 2, with a visible cut"
        " (an estimate: priced as on Veo, nothing is billed here)."
    )
    keep = page.get_by_label("Keep the scenes after it")
    again = page.get_by_label("Make the scenes after it again")
    expect(keep).to_be_checked()
    expect(page.locator("#continuity-keep-cost")).to_have_text(
        f" — {money(price)}: makes 1 scene (4 s of video) and reuses 2, with a visible cut"
    )
    expect(page.locator("#continuity-regenerate-cost")).to_have_text(
        f" — {money(2 * price)}: makes 2 scenes (8 s of video) and reuses 1"
    )
    expect(page.locator("#edit-changes li")).to_have_text(["scene 2: new prompt"])
    expect(cards.nth(1).locator(".scene-change")).to_have_text("New prompt · Made when you apply")
    expect(cards.nth(2).locator(".scene-change")).to_have_text("Reused: not made again · Starts with a visible cut")
    # The other choice: two scenes; then back to keeping scene 3 (a cut), which this test applies.
    again.check()
    expect(cost).to_contain_text(f"Cost of this edit: {money(2 * price)}. ")
    expect(cards.nth(2).locator(".scene-change")).to_have_text("Made again for continuity")
    keep.check()
    expect(cost).to_contain_text(f"Cost of this edit: {money(price)}. ")
    expect(apply).to_be_enabled()
    screenshot(page, "pending")

    # Apply: version 2 runs, its progress live, counting only the scene being made.
    watch_text(page, "editor-status")
    with page.expect_request(is_edit(dry_run=False)) as applied:
        apply.click()
    data = sent(applied.value)
    assert data["scenes"] == [{"from": 0}, {"from": 1, "prompt": new_prompt}, {"from": 2}], data
    assert (data["continuity"], data["jobId"]) == ("keep", job_id) and data["requestId"], data
    status = page.locator("#editor-status")
    expect(status).to_contain_text("Imaginating Scene... scene 1 of 1", timeout=30_000)
    expect(page.locator("#editor-status")).to_be_focused()
    # While it runs, the cards show the version being made, and cannot be edited.
    expect(page.get_by_label("Prompt of scene 2")).to_have_value(new_prompt)
    expect(page.get_by_label("Prompt of scene 2")).to_have_attribute("readonly", "")
    expect(page.get_by_role("button", name="Delete scene 1")).to_be_disabled()
    for i in (0, 2):
        expect(cards.nth(i).locator(".segment-status")).to_have_text(
            "Status: completed, reused from an earlier version"
        )
    expect(page.get_by_role("progressbar", name="Version progress")).to_have_attribute(
        "aria-valuetext", re.compile(r"%, Imaginating Scene\.\.\. scene 1 of 1$")
    )
    screenshot(page, "progress")
    expect(status).to_have_text("100% — Completed", timeout=60_000)
    seen = page.evaluate("window.textsSeen['editor-status']")
    messages = [text.split(" — ", 1)[-1] for text in seen]
    assert "Imaginating Scene... scene 1 of 1" in messages, seen
    assert "Stitching Masterpiece..." in messages, seen
    assert not any("of 3" in text for text in messages), seen  # the reused scenes are not counted
    log = page.locator("#editor-log li").all_inner_texts()
    assert log[-1] == "100% — Completed" and any("Stitching Masterpiece..." in line for line in log), log

    job = server_job(url, job_id)
    assert job["version"] == 2 and [v["number"] for v in job["versions"]] == [1], job
    assert [bool(s.get("reused")) for s in job["segments"]] == [True, False, True], job["segments"]
    assert [s["prompt"] for s in job["segments"]] == [prompts[0], new_prompt, prompts[2]]

    # Version 2 plays: three scenes, from get_playback_urls' link for the current version.
    final = page.locator("#editor-final")
    expect(final).to_be_visible()
    assert abs(wait_for_metadata(final) - 3 * SEGMENT_SECONDS) < 0.1
    current = [r for r in answers if asked_version(r) is None]
    version_2_url = playback_result(current[-1])["videoUrl"]
    assert version_2_url and version_2_url != version_1_url
    expect(final).to_have_attribute("src", version_2_url)
    switcher = page.get_by_label("Version to play")
    expect(switcher).to_have_value("")
    expect(switcher.locator("option")).to_have_text(
        ["Version 2 (current): scene 2: new prompt", "Version 1: as first made"]
    )
    expect(page.locator("#version-about")).to_contain_text("Version 2: 3 scenes, completed")
    expect(cost).to_have_text(NO_CHANGES)  # the new version, as it is
    expect(page.get_by_label("Prompt of scene 2")).not_to_have_attribute("readonly", "")
    final.evaluate("v => { v.muted = true; return v.play().then(() => v.pause()); }")
    screenshot(page, "version-2")

    # Back to version 1: its own link (asked for with its number), its own video.
    with page.expect_response(lambda r: r.url.endswith("/get_playback_urls") and asked_version(r) == 1) as old:
        switcher.select_option("1")
    version_1_link = playback_result(old.value)["videoUrl"]
    assert version_1_link == version_1_url  # the same file version 1 played before the edit
    expect(final).to_have_attribute("src", version_1_url)
    assert abs(wait_for_metadata(final) - 3 * SEGMENT_SECONDS) < 0.1
    expect(page.locator("#version-about")).to_contain_text("Version 1: 3 scenes, completed")
    final.evaluate("v => { v.muted = true; return v.play().then(() => v.pause()); }")
    screenshot(page, "version-1")

    # And forward again: the current version's link, not asked for anew.
    switcher.select_option("")
    expect(final).to_have_attribute("src", version_2_url)
    assert current_job_id(page) == job_id


def test_scene_cards_insert_delete_move_and_regenerate_from_the_keyboard(
    page: Page, served: str, screenshot: Shot
) -> None:
    prompts = ["A kettle on a stove", "Steam rises from the kettle", "Tea is poured into a cup"]
    open_director(page, served)
    enter_scenes(page, prompts)
    page.get_by_label("Chain scenes").uncheck()
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_have_text("Completed", timeout=60_000)
    price = scene_price(server_job(served, current_job_id(page)))

    page.get_by_role("button", name="Editor").click()
    expect(page.locator("#segments > li")).to_have_count(3)
    expect(page.locator("#continuity")).to_be_hidden()  # not chained: no join to choose for
    cost = page.locator("#edit-cost")

    # Move scene 3 up with the keyboard: a reorder makes nothing.
    page.get_by_role("button", name="Move scene 3 up").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Prompt of scene 2")).to_have_value(prompts[2])
    expect(page.get_by_role("button", name="Move scene 2 up")).to_be_focused()  # the focus moves with it
    expect(page.locator("#segments > li").nth(1).locator(".scene-change")).to_contain_text("Was scene 3")
    expect(cost).to_contain_text(f"Cost of this edit: {money(0)}. It makes no scene and reuses 3")

    # Insert a scene after scene 1 with the keyboard: its prompt gets the focus; a blank one is refused beside it.
    page.get_by_role("button", name="Insert a scene after scene 1").focus()
    page.keyboard.press("Enter")
    new_scene = page.get_by_label("Prompt of scene 2")
    expect(new_scene).to_be_focused()
    expect(new_scene).to_have_value("")
    expect(page.locator("#segments > li").nth(1).locator(".scene-change")).to_contain_text("New scene")
    page.keyboard.type("   ")
    expect(new_scene).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#segments > li").nth(1).locator(".field-error")).to_be_visible()
    expect(cost).to_have_text("No cost for this edit until its problem is fixed (shown on the scene).")
    screenshot(page, "invalid")
    page.keyboard.type("A cat watches the kettle")
    expect(new_scene).not_to_have_attribute("aria-invalid", "true")
    expect(cost).to_contain_text(f"Cost of this edit: {money(price)}. It makes 1 scene (4 s of video) and reuses 3")

    # Regenerate scene 1 as it is (a new seed): a second scene to make; pressed again, undone.
    regenerate = page.get_by_role("button", name="Regenerate scene 1")
    regenerate.focus()
    page.keyboard.press("Enter")
    expect(regenerate).to_have_attribute("aria-pressed", "true")
    expect(cost).to_contain_text(
        f"Cost of this edit: {money(2 * price)}. It makes 2 scenes (8 s of video) and reuses 2"
    )

    # Delete the last scene: one fewer, nothing more to make.
    with page.expect_request(is_edit(dry_run=True)) as dry:
        page.get_by_role("button", name="Delete scene 4").click()
    expect(page.locator("#segments > li")).to_have_count(3)
    assert sent(dry.value)["scenes"] == [
        {"from": 0, "regenerate": True},
        {"prompt": "   A cat watches the kettle"},
        {"from": 2},
    ], sent(dry.value)
    expect(page.locator("#edit-changes li")).to_contain_text(["scene 2: deleted"])
    screenshot(page, "pending")

    # Drag the last card onto the first.
    cards = page.locator("#segments > li")
    cards.nth(2).locator(".drag-handle").drag_to(cards.nth(0), target_position={"x": 40, "y": 40})
    expect(page.get_by_label("Prompt of scene 1")).to_have_value(prompts[2])

    # Every control in the Editor is labelled; Discard puts the version back as it is.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("#editor input, #editor select, #editor textarea")]
            .filter(c => c.labels.length === 0).map(c => c.id)"""
    )
    assert unlabelled == []
    nameless = page.evaluate(
        """() => [...document.querySelectorAll("#editor button")]
            .filter(b => !(b.getAttribute("aria-label") || b.textContent.trim())).map(b => b.outerHTML)"""
    )
    assert nameless == []
    page.get_by_role("button", name="Discard changes").click()
    for i, prompt in enumerate(prompts):
        expect(page.get_by_label(f"Prompt of scene {i + 1}")).to_have_value(prompt)
    expect(cost).to_have_text(NO_CHANGES)
    expect(page.get_by_role("button", name="Apply edit")).to_be_disabled()
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "phone")
