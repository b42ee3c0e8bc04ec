"""Deleting a job: a confirm step in the page (a modal dialog, keyboard first), then
delete_long_form_video_job; the job leaves My jobs, the server and its files, and closes if open."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.pages import (
    generate_and_finish,
    open_director,
    playback_result,
    record_playback,
    server_jobs,
)

Shot = Callable[..., Path]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_delete_a_finished_job_from_my_jobs(page: Page, served: str, screenshot: Shot) -> None:
    open_director(page, served)
    answers = record_playback(page)
    prompt = "A snowman melts in the spring sun"
    job_id = generate_and_finish(page, [prompt])
    expect(page.locator("#final-video")).to_be_visible()
    links = playback_result(answers[-1])
    files = [served + links["videoUrl"].lstrip("/"), *(served + s["url"].lstrip("/") for s in links["segments"])]
    assert [status_of(f) for f in files] == [200, 200]

    page.get_by_role("button", name="My jobs").click()
    item = page.locator(f'#job-list li[data-job-id="{job_id}"]')
    delete = item.get_by_role("button", name="Delete")
    expect(delete).to_have_accessible_name(f"Delete: {prompt} (completed)")
    dialog = page.get_by_role("dialog", name="Delete this job?")

    # From the keyboard: Enter opens the confirm step with the focus on the safe choice; Escape keeps the job.
    delete.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(prompt)
    expect(dialog).to_have_accessible_description(
        f"“{prompt}”: completed, 1 scene. "
        "Its video and scenes are deleted for good. Video time it used today stays used."
    )
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    screenshot(page, "confirm")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()  # back where it was
    expect(item).to_have_count(1)
    assert job_id in [job["jobId"] for job in server_jobs(served)]

    # Again, and "Delete job" this time.
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(dialog.get_by_role("button", name="Delete job")).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/delete_long_form_video_job")) as deleted:
        page.keyboard.press("Enter")
    assert deleted.value.json() == {"result": {"jobId": job_id, "deleted": True}}
    expect(dialog).to_be_hidden()
    expect(item).to_have_count(0)
    expect(page.locator("#announce")).to_contain_text(f"Deleted the job “{prompt}”")
    assert page.evaluate("document.activeElement !== document.body")  # the focus went somewhere useful
    assert job_id not in [job["jobId"] for job in server_jobs(served)]
    assert [status_of(f) for f in files] == [404, 404]  # its video and its scene are gone
    # It was the open job: it is closed, in the address and in the Director.
    assert page.evaluate("location.hash") == "#jobs"
    page.get_by_role("button", name="Director").click()
    expect(page.locator("#job")).to_be_hidden()
    screenshot(page, "deleted")


def test_delete_the_open_job_from_the_editor_on_a_phone(page: Page, served: str, screenshot: Shot) -> None:
    width = 375
    page.set_viewport_size({"width": width, "height": 740})
    open_director(page, served)
    job_id = generate_and_finish(page, ["A paper plane over the playground"])
    page.get_by_role("button", name="Editor").click()
    expect(page.locator("#segments > li")).to_have_count(1)

    page.get_by_role("button", name="Delete this job").click()
    dialog = page.get_by_role("dialog", name="Delete this job?")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    screenshot(page, "confirm-phone")
    dialog.get_by_role("button", name="Delete job").click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#editor-empty")).to_be_visible()
    expect(page.locator("#editor-job")).to_be_hidden()
    expect(page.get_by_role("heading", name="Editor")).to_be_focused()
    assert page.evaluate("location.hash") == "#editor"
    assert job_id not in [job["jobId"] for job in server_jobs(served)]
    page.get_by_role("button", name="My jobs").click()
    expect(page.locator(f'#job-list li[data-job-id="{job_id}"]')).to_have_count(0)
    screenshot(page, "deleted-phone")
