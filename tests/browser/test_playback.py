"""Playing a job: links come from get_playback_urls only, are fetched again when they expire (or
a player fails to load one), and scenes or videos removed by retention say so instead of playing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Request, Route, expect

from tests.browser.pages import (
    PLAYBACK,
    SEGMENT_SECONDS,
    Served,
    generate_and_finish,
    open_director,
    playback_result,
    record_playback,
    wait_for_metadata,
)

Shot = Callable[..., Path]


def asks_for_links(request: Request) -> bool:
    return request.url.endswith(PLAYBACK)


def test_expired_links_are_fetched_again(page: Page, served: str) -> None:
    page.clock.install()  # the page's Date.now() follows the real time until the test jumps it
    open_director(page, served)
    answers = record_playback(page)
    generate_and_finish(page, ["A clock tower at noon"])
    video = page.locator("#final-video")
    assert abs(wait_for_metadata(video) - SEGMENT_SECONDS) < 0.1
    asked = len(answers)
    assert asked >= 1

    # Within the link's life (60 minutes, less a 5-minute margin), playing asks for nothing new.
    page.clock.fast_forward("30:00")
    video.evaluate("v => { v.muted = true; return v.play().then(() => v.pause()); }")
    page.wait_for_timeout(300)
    assert len(answers) == asked

    # Past it, playing asks for fresh links first.
    page.clock.fast_forward("26:00")
    with page.expect_response(lambda r: asks_for_links(r.request)):
        video.evaluate("v => { v.muted = true; return v.play().then(() => v.pause()); }")
    assert len(answers) == asked + 1
    expect(video).to_have_attribute("src", playback_result(answers[-1])["videoUrl"])
    assert abs(wait_for_metadata(video) - SEGMENT_SECONDS) < 0.1

    # A player that cannot load its link (as when it expired mid-play) gets a fresh one and recovers.
    page.clock.fast_forward("00:30")  # a link that fails right after it was fetched is not asked again
    failed: list[str] = []

    def fail_once(route: Route) -> None:
        if failed:
            route.continue_()
        else:
            failed.append(route.request.url)
            route.abort()

    page.route("**/final/video.mp4*", fail_once)
    with page.expect_request(asks_for_links):
        video.evaluate("v => v.load()")  # the browser asks for the file again: the "expired" link fails
    assert failed, "the player did not ask for the file"
    assert abs(wait_for_metadata(video) - SEGMENT_SECONDS) < 0.1
    assert video.evaluate("v => v.error") is None


def remove_old_media(data_dir: Path, *, video: bool) -> dict[str, int]:
    """Retention, two days on, on the server's data dir (the server itself does not run it)."""
    from longform.adapters.local_blob_store import LocalBlobStore
    from longform.adapters.sqlite import Database
    from longform.adapters.sqlite_job_store import SqliteJobStore
    from longform.config import Settings
    from longform.service import JobService

    settings = Settings().with_(data_dir=data_dir)
    blobs = LocalBlobStore(settings.blob_dir)
    engine: Any = None  # retention starts and stops nothing
    later = datetime.now(UTC) + timedelta(days=2)
    service = JobService(SqliteJobStore(Database(settings.db_path)), engine, blobs=lambda: blobs, clock=lambda: later)
    return service.remove_old_media(scene_days=1, video_days=1 if video else 0)


def test_removed_scenes_and_videos_say_so_instead_of_playing(
    page: Page, served_alone: Served, screenshot: Shot
) -> None:
    url = served_alone.url
    open_director(page, url)
    job_id = generate_and_finish(page, ["A sandcastle at low tide", "The tide comes in"])

    # Retention removes the scenes' media: the Editor says so; the final video still plays.
    assert remove_old_media(served_alone.data_dir, video=False) == {"scenes": 1, "videos": 0}
    page.reload()  # the server's feed did not hear of it: a new visit reads the job again
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="Editor").click()
    segments = page.locator("#segments > li")
    expect(segments).to_have_count(2)
    for i in range(2):
        expect(segments.nth(i).locator(".segment-status")).to_have_text("Status: completed")
        expect(segments.nth(i).locator(".segment-none")).to_contain_text("Preview removed on")
        expect(segments.nth(i).get_by_label(f"Scene {i + 1} preview")).to_be_hidden()
    final = page.locator("#editor-final")
    expect(final).to_be_visible()
    assert abs(wait_for_metadata(final) - 2 * SEGMENT_SECONDS) < 0.1
    screenshot(page, "scenes-removed")

    # Then the final video: neither view offers a player or a download.
    assert remove_old_media(served_alone.data_dir, video=True) == {"scenes": 0, "videos": 1}
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#editor-final-none")).to_contain_text("The final video was removed on")
    expect(final).to_be_hidden()
    page.get_by_role("button", name="Director").click()
    expect(page.locator("#status")).to_have_text("Completed")
    expect(page.locator("#result-note")).to_contain_text("The final video was removed on")
    expect(page.locator("#final-video")).to_be_hidden()
    expect(page.get_by_role("link", name="Download the video")).to_have_count(0)
    screenshot(page, "video-removed")
    page.get_by_role("button", name="My jobs").click()
    expect(page.locator(f'#job-list li[data-job-id="{job_id}"] .job-meta')).to_contain_text("video removed")
