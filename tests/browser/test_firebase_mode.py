"""Firebase mode's page with a stand-in SDK (tests/browser/fake_firebase/): no emulator, no network.

The page gets a Firebase config in place of local mode's and the fake modules in place of
web/vendor/firebase/; it runs backend-firebase.js unchanged. What this checks is the page's side
(sign-in with Google or email and password, who is signed in, Generate held until then, the
budget refusal, the usage document, My jobs, playback links and delete through the callables, the
estimate from Hosting's prices.json and each job's cost) and that both backends offer the same
interface. The real SDK against the emulators is for the emulator-suite browser test."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, expect

from devtools.web_config import render_prices
from longform.cloud.composition import Cloud
from longform.config import Settings
from longform.request import VideoRequest
from tests.browser.pages import cost_brief, cost_words, estimate_words, money

Shot = Callable[..., Path]
FAKES = Path(__file__).with_name("fake_firebase")
CONFIG = {
    "mode": "firebase",
    "region": "us-central1",
    "appCheckSiteKey": "6Lfake-site-key",
    "appCheckDebug": True,
    "firebase": {"apiKey": "fake-key", "projectId": "demo-fake", "appId": "1:0:web:0"},
    "emulators": {"auth": "127.0.0.1:9099", "firestore": "127.0.0.1:8080", "functions": "127.0.0.1:5001"},
}
BUDGET = {"scope": "user", "limitSeconds": 600, "remainingSeconds": 20, "requestedSeconds": 48}
JOB_ID = "0123456789abcdef0123456789abcdef"
GOOGLE_UID = "google-ada"


def use_fake_firebase(page: Page, state: dict[str, Any]) -> None:
    """Firebase mode's config and the fake SDK, with ``state`` as fakeFirebase's starting state."""

    def module(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[1]
        route.fulfill(path=FAKES / name, content_type="text/javascript")

    page.route("**/vendor/firebase/*.js", module)
    page.route("**/__/longform/config.json", lambda route: route.fulfill(json=CONFIG))
    # Hosting serves the web/prices.json `make web` wrote (here: the default params' prices).
    page.route(
        "**/prices.json", lambda route: route.fulfill(body=render_prices(Settings()), content_type="application/json")
    )
    page.add_init_script(f"globalThis.fakeFirebase = {json.dumps(state)};")


def calls(page: Page, kind: str) -> list[list[Any]]:
    return [call for call in page.evaluate("fakeFirebase.calls") if call[0] == kind]


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("body")).to_have_attribute("data-mode", "firebase")


def test_firebase_mode_signs_in_with_google_or_email_before_generate(page: Page, served: str, screenshot: Shot) -> None:
    job: dict[str, Any] = {
        "jobId": JOB_ID,
        "userId": GOOGLE_UID,
        "status": "completed",
        "progress": 100,
        "request": {"prompts": ["A fake job"], "segmentSeconds": 8},
        "segments": [{"index": 0, "prompt": "A fake job", "status": "completed", "uri": "gs://bucket/segment.mp4"}],
        "timings": {"createdAt": "2026-11-29T10:00:00Z"},
        "videoUrl": "https://stale.example/video.mp4",  # a job's own link is never played
    }
    use_fake_firebase(
        page,
        {
            "accounts": {"grace@example.com": "hopper1906"},
            "docs": {f"videoJobs/{JOB_ID}": job},
            "callables": {
                "trigger_long_form_video_job": {
                    "error": {
                        "code": "functions/resource-exhausted",
                        "message": "not enough video time left today: this job needs 48 s and you have 20 s "
                        "of 600 s a day left",
                        "details": BUDGET,
                    }
                },
                "get_playback_urls": {
                    "data": {"jobId": JOB_ID, "videoUrl": None, "segments": [{"index": 0, "url": None}]}
                },
                "delete_long_form_video_job": {"data": {"jobId": JOB_ID, "deleted": True}},
            },
        },
    )
    open_page(page, served)
    generate = page.get_by_role("button", name="Generate")
    sign_in = page.get_by_role("region", name="Sign in")
    who = page.locator("#who")
    usage = page.locator("#usage")

    # Nobody signed in: the ways to sign in, and Generate held with the reason beside it.
    expect(who).to_have_text("Not signed in")
    expect(sign_in).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(generate).to_be_disabled()
    expect(page.locator("#generate-note")).to_contain_text("Sign in to make videos.")
    expect(usage).to_have_text("Sign in to see today's video time.")
    assert [c[1] for c in calls(page, "connectAuthEmulator")] == ["http://127.0.0.1:9099"]
    # App Check starts with the site key, in debug mode here (served from this machine, appCheckDebug)
    assert [c[1:] for c in calls(page, "initializeAppCheck")] == [["6Lfake-site-key", True, True]]
    assert not calls(page, "signInAnonymously")  # no more anonymous accounts
    screenshot(page, "signed-out")
    page.get_by_role("button", name="Go to Sign in").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_focused()
    page.get_by_role("button", name="My jobs").click()
    expect(page.locator("#jobs-empty")).to_have_text("Sign in to see your jobs.")
    assert not calls(page, "getDocs")
    page.get_by_role("button", name="Director").click()

    # Email and password: a wrong password, a too-short new one, then a new account.
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_label("Password").press("Enter")
    error = page.locator("#sign-in-error")
    expect(error).to_have_text("Wrong email or password.")
    expect(who).to_have_text("Not signed in")
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill("abc")
    page.get_by_role("button", name="Create account").click()
    expect(error).to_have_text("Choose a longer password: at least 6 characters.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_be_focused()
    page.get_by_label("Password").fill("long enough")
    page.get_by_role("button", name="Create account").click()

    expect(who).to_have_text("Signed in as new@example.com")
    expect(sign_in).to_be_hidden()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(generate).to_be_enabled()
    expect(page.locator("#generate-note")).to_be_hidden()
    # Before the first job of the day there is no usage document: nothing used, the limit not known yet.
    today = page.evaluate("new Date().toISOString().slice(0, 10)")
    usage_path = f"usage/password-new@example.com/days/{today}"
    expect(usage).to_have_text(
        "Today: no video time used yet. Your daily limit shows here once you start your first video today."
    )
    assert [c[1] for c in calls(page, "getDoc")][-1] == usage_path
    screenshot(page, "signed-in")

    # The usage document once there is one; Generate refused for the budget says what is left.
    page.evaluate(
        f"fakeFirebase.docs[{json.dumps(usage_path)}] = "
        f"{{day: {json.dumps(today)}, seconds: 580, returnedSeconds: 0, jobs: 3, limitSeconds: 600}}"
    )
    page.get_by_text("Paste many scenes").click()
    page.get_by_label("Scenes, one per line").fill("one\ntwo\nthree\nfour\nfive\nsix")  # 6 × 8 s = 48 s
    page.get_by_role("button", name="Add these scenes").click()
    generate.click()
    message = page.locator("#request-error")
    expect(message).to_contain_text(
        "Not enough video time left today: this video needs 48 s and you have 20 s left of 600 s a day."
    )
    expect(message).to_contain_text("2 scenes of 8 s would fit.")
    expect(usage).to_have_text("Today: 580 s used, 20 s left of 600 s. This video needs 48 s: more than is left today")
    trigger = calls(page, "call")[-1]
    assert trigger[1] == "trigger_long_form_video_job" and trigger[3] == "password-new@example.com", trigger
    screenshot(page, "refused")

    # Sign out: back to the sign-in, Generate held again.
    page.get_by_role("button", name="Sign out").click()
    expect(who).to_have_text("Not signed in")
    expect(sign_in).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_focused()
    expect(generate).to_be_disabled()
    expect(usage).to_have_text("Sign in to see today's video time.")

    # Google: the popup closed first, then signed in.
    page.evaluate("fakeFirebase.popupClosed = true")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(error).to_have_text("The sign-in window was closed before signing in.")
    page.evaluate("fakeFirebase.popupClosed = false")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(who).to_have_text("Signed in as Ada Lovelace (ada@example.com)")
    assert calls(page, "signInWithPopup")[-1] == ["signInWithPopup", "google.com", {"prompt": "select_account"}]
    expect(generate).to_be_enabled()

    # Their jobs, played through get_playback_urls (never the job's own link), deleted through the callable.
    page.get_by_role("button", name="My jobs").click()
    item = page.locator(f'#job-list li[data-job-id="{JOB_ID}"]')
    expect(item).to_contain_text("A fake job")
    item.get_by_role("button", name="Open in Editor").click()
    expect(page.locator("#editor-final-none")).to_have_text("There is no video to play.")
    expect(page.locator("#editor-final")).not_to_have_attribute("src", job["videoUrl"])
    assert ["call", "get_playback_urls", {"jobId": JOB_ID}, GOOGLE_UID] in calls(page, "call")
    page.get_by_role("button", name="Delete this job").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete job").click()
    expect(page.locator("#editor-empty")).to_be_visible()
    assert calls(page, "call")[-1] == ["call", "delete_long_form_video_job", {"jobId": JOB_ID}, GOOGLE_UID]

    page.set_viewport_size({"width": 375, "height": 740})
    page.get_by_role("button", name="Sign out").click()
    expect(sign_in).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "signed-out-phone")


def test_firebase_mode_shows_the_estimate_and_what_each_job_cost(page: Page, served: str, screenshot: Shot) -> None:
    uid = "password-grace@example.com"
    today = datetime.now(UTC).date().isoformat()
    pricing = Cloud(Settings()).pricing  # the deployed functions' prices with the default params: Veo, billed
    request = {"prompts": ["A kite rises", "The kite dips"], "segmentSeconds": 8}
    estimate = pricing.estimate(VideoRequest.model_validate(request))
    spent = pricing.scene_usd(VideoRequest.model_validate(request))
    failed: dict[str, Any] = {  # the job as its document ends: scene 1 made, scene 2 failed
        "jobId": JOB_ID,
        "userId": uid,
        "status": "failed",
        "progress": 45,
        "error": "scene 2 failed",
        "request": request,
        "segments": [
            {"index": 0, "prompt": "A kite rises", "status": "completed"},
            {"index": 1, "prompt": "The kite dips", "status": "failed", "error": "blocked"},
        ],
        "timings": {"createdAt": f"{today}T10:00:00Z"},
        "cost": estimate.model_dump(mode="json") | {"scenesUsd": spent, "totalUsd": spent},
    }
    use_fake_firebase(
        page,
        {
            "user": {"uid": uid, "email": "grace@example.com", "displayName": None, "isAnonymous": False},
            "docs": {
                f"usage/{uid}/days/{today}": {"day": today, "seconds": 16, "limitSeconds": 600, "spentUsd": 3.614}
            },
            "callables": {
                "trigger_long_form_video_job": {
                    "data": {"jobId": JOB_ID, "status": "queued", "cost": estimate.model_dump(mode="json")}
                },
                "get_playback_urls": {"data": {"jobId": JOB_ID, "videoUrl": None, "segments": []}},
            },
        },
    )
    open_page(page, served)
    expect(page.locator("#who")).to_have_text("Signed in as grace@example.com")
    page.get_by_label("Scene 1", exact=True).fill(request["prompts"][0])
    page.get_by_role("button", name="Add scene").click()
    page.get_by_label("Scene 2", exact=True).fill(request["prompts"][1])

    # Before Generate: the estimate from Hosting's prices.json, billed on Veo; and what today spent.
    assert not estimate.estimated
    expect(page.locator("#estimate")).to_have_text(f"Video length: 16 s (2 × 8 s). {estimate_words(estimate)}")
    expect(page.locator("#spent-today")).to_have_text(f"Spent today: {money(3.614)}")

    # Generate: the trigger's answer carries the job's estimate. (The fake has no document for the
    # job yet, so the Director shows the answer's cost and says the updates stopped.)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#job-cost")).to_have_text(cost_words(estimate.model_dump(mode="json"), final=False))
    expect(page.locator("#job-error")).to_contain_text("the job no longer exists")

    # The job's document once it failed: what it spent, in the Editor and My jobs.
    page.evaluate(f"fakeFirebase.docs[{json.dumps(f'videoJobs/{JOB_ID}')}] = {json.dumps(failed)}")
    page.get_by_role("button", name="My jobs").click()
    item = page.locator(f'#job-list li[data-job-id="{JOB_ID}"]')
    expect(item.locator(".job-cost")).to_have_text(cost_brief(failed["cost"]))
    item.get_by_role("button", name="Open in Editor").click()
    expect(page.locator("#editor-cost")).to_have_text(cost_words(failed["cost"], final=True))
    expect(page.locator("#editor-cost")).to_contain_text("Billed on veo-3.1-fast-generate-001 and the Transcoder")
    page.get_by_role("button", name="Director").click()
    expect(page.locator("#job-cost")).to_have_text(cost_words(failed["cost"], final=True))
    screenshot(page, "cost")


def test_both_backends_offer_the_same_interface(page: Page, served: str) -> None:
    use_fake_firebase(page, {})
    open_page(page, served)
    shapes = page.evaluate(
        """async () => {
            const shape = (backend) => Object.fromEntries(Object.entries(backend).map(([k, v]) => [k, typeof v]));
            const { createLocalBackend } = await import("/backend-local.js");
            const { createFirebaseBackend } = await import("/backend-firebase.js");
            const local = createLocalBackend({ project: "demo-longform", region: "us-central1" });
            const firebase = await createFirebaseBackend({ region: "us-central1", firebase: { projectId: "x" } });
            return [shape(local), shape(firebase), local.accounts, firebase.accounts, local.linkMinutes];
        }"""
    )
    local, firebase, local_accounts, firebase_accounts, link_minutes = shapes
    assert local == firebase, (local, firebase)
    assert {
        "onUser",
        "signIn",
        "signOut",
        "usage",
        "playback",
        "deleteJob",
        "edit",
        "trigger",
        "cancel",
        "watch",
        "listJobs",
    } <= {name for name, kind in local.items() if kind == "function"}
    assert (local_accounts, firebase_accounts, link_minutes) == (False, True, 60)
