"""The Firebase-mode page, in Chromium, against the emulator suite: the real Firebase JS SDK (as
`make web` vendors it) signs up with email and password in the Auth emulator, calls the callables
on the Functions emulator, watches the job in the Firestore emulator, and plays the final video
from the Storage emulator through get_playback_urls' signed link, and shows the job's estimate and
cost. The page is served as Hosting would serve it: web/ as it is, with web/config.json and
/__/firebase/init.json naming this suite, and the web/prices.json `make web` writes for its params."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from devtools.emulator_suite import PROJECT, REGION, EmulatorSuite
from devtools.servers import ROOT
from devtools.web_config import render_prices
from longform.config import Settings
from tests.browser.pages import cost_words, money
from tests.conftest import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

WEB = ROOT / "web"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
SECONDS = 6  # the Transcoder joins segments of 5 s or more


@pytest.fixture(scope="module")
def page_url(suite: EmulatorSuite) -> Iterator[str]:
    """web/ served on a free port, with this suite's emulators in its config."""
    if not (WEB / "vendor" / "firebase" / "firebase-auth.js").is_file():
        unavailable("the Firebase SDK is not vendored (make web; make test does it when npm is there)")
    config = {
        "mode": "firebase",
        "region": REGION,
        "playbackUrlMinutes": 60,
        "emulators": {
            "auth": suite.auth_url.removeprefix("http://"),
            "firestore": suite.firestore_host,
            "functions": f"127.0.0.1:{suite.ports.functions}",
        },
    }
    # What Hosting answers at /__/firebase/init.json; the SDK needs an apiKey and, for sign-in, an authDomain.
    init = {"projectId": PROJECT, "apiKey": "emulator-api-key", "authDomain": "127.0.0.1", "appId": "1:1:web:1"}
    # The suite's functions price as the defaults do: VIDEO_MODEL=veo, VEO_MODEL, STITCH_BACKEND=transcoder.
    prices = json.loads(render_prices(Settings(video_model="veo", stitch_backend="transcoder")))
    answers = {"/config.json": config, "/__/firebase/init.json": init, "/prices.json": prices}

    class Hosting(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in answers:
                body = json.dumps(answers[path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Hosting, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_user_signs_up_makes_a_two_scene_video_watches_it_and_plays_it_as_the_budget_goes_down(
    suite: EmulatorSuite, page_url: str, browser: Browser
) -> None:
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(page_url)
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
        expect(page.locator("#who")).to_have_text("Not signed in")
        expect(page.get_by_role("button", name="Generate")).to_be_disabled()

        email = f"{uuid.uuid4().hex[:10]}@example.com"
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Create account").click()
        expect(page.locator("#who")).to_have_text(f"Signed in as {email}", timeout=30_000)
        usage = page.locator("#usage")
        expect(usage).to_contain_text("Today")
        before = usage.inner_text()

        page.get_by_label("Scene 1", exact=True).fill("A paper boat on a puddle")
        page.get_by_role("button", name="Add scene").click()
        page.get_by_label("Scene 2", exact=True).fill("The boat drifts into a gutter")
        page.get_by_label("Segment length").select_option(str(SECONDS))
        estimate = page.locator("#estimate")
        expect(estimate).to_contain_text("Estimated cost: $")
        estimated = estimate.inner_text()
        page.get_by_role("button", name="Generate").click()

        status = page.locator("#status")
        expect(status).to_contain_text("Imaginating Scene...", timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "emulators-firebase-page-generating.png"))
        bar = page.get_by_role("progressbar")
        expect(status).to_have_text("Completed", timeout=180_000)
        expect(bar).to_have_attribute("aria-valuenow", "100")
        log = [item.inner_text() for item in page.locator("#status-log li").all()]
        assert any("Stitching Masterpiece..." in line for line in log), log

        video = page.locator("#final-video")  # its link: get_playback_urls, signed, to the Storage emulator
        expect(video).to_have_attribute("src", re.compile("^" + re.escape(suite.storage_url)), timeout=30_000)
        video.evaluate(
            "v => v.readyState >= 1 || new Promise(ok => v.addEventListener('loadedmetadata', ok, {once: true}))"
        )
        duration: Any = video.evaluate("v => v.duration")
        assert abs(float(duration) - 2 * SECONDS) < 0.2, duration

        expect(usage).to_contain_text(f"{2 * SECONDS} s used", timeout=30_000)
        assert usage.inner_text() != before

        # What it cost: the job document's cost; its estimate is what the page showed before Generate.
        from google.cloud import firestore

        job_id = page.evaluate("location.hash.split('/')[1]")
        with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": suite.firestore_host}):
            job = firestore.Client(project=PROJECT).collection("videoJobs").document(job_id).get().to_dict() or {}
        cost = job["cost"]
        assert not cost["estimated"] and cost["totalUsd"] > 0 and cost["stitchUsd"] > 0, cost
        assert f"Estimated cost: {money(cost['estimateUsd'])} with {cost['pricedAs']}" in estimated, (estimated, cost)
        expect(page.locator("#job-cost")).to_have_text(cost_words(cost, final=True))
        expect(page.locator("#spent-today")).to_have_text(f"Spent today: {money(cost['totalUsd'])}")  # their one job
        page.screenshot(path=str(SCREENSHOTS / "emulators-firebase-page-completed.png"))
        assert problems == []
    finally:
        context.close()
