"""Browser tests: Debian's Chromium driven by Playwright for Python against ``longform serve``.

No browser is downloaded: Playwright launches /usr/bin/chromium (``make test`` installs it with
apt). Without Chromium or Playwright these tests skip, except under CI, where they fail.
Screenshots of each state go to test-output/screenshots/.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devtools.servers import ROOT, ServerProcess, free_port, http_ready
from tests.browser.pages import PRICE_TABLE, TIGHT_SECONDS_PER_DAY, Served

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response

SCREENSHOTS = ROOT / "test-output" / "screenshots"
CALLABLE = re.compile(r"/demo-longform/us-central1/\w+$")


def _serve(name: str, argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    port = free_port()
    data_dir = tmp / "data"
    argv = [*argv, "--port", str(port), "--data-dir", str(data_dir)]
    url = f"http://127.0.0.1:{port}/"
    ready = http_ready(url + "__/longform/config.json")
    with ServerProcess(name, argv, port, ready=ready, env=env, log_dir=tmp):
        yield Served(url, data_dir)


def _longform_serve() -> list[str]:
    script = Path(sys.executable).with_name("longform")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "longform", "serve"]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``longform serve`` as a user starts it, with its own data dir; yields the page's URL."""
    for server in _serve("longform-serve", _longform_serve(), tmp_path_factory.mktemp("serve")):
        yield server.url


@pytest.fixture(scope="session")
def served_tight_budget(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``longform serve`` whose user may start only TIGHT_SECONDS_PER_DAY seconds of video a day."""
    env = {"USER_SECONDS_PER_DAY": str(TIGHT_SECONDS_PER_DAY)}
    tmp = tmp_path_factory.mktemp("serve-tight")
    for server in _serve("longform-serve-tight", _longform_serve(), tmp, env):
        yield server.url


@pytest.fixture(scope="session")
def served_priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``longform serve`` with PRICE_TABLE changing the prices (pages.PRICE_TABLE)."""
    env = {"PRICE_TABLE": PRICE_TABLE}
    for server in _serve("longform-serve-priced", _longform_serve(), tmp_path_factory.mktemp("serve-priced"), env):
        yield server.url


@pytest.fixture
def served_alone(tmp_path: Path) -> Iterator[Served]:
    """A server of the test's own, with its data dir, for a test that changes every job in it."""
    yield from _serve("longform-serve-alone", _longform_serve(), tmp_path)


@pytest.fixture(scope="session")
def served_scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same server with tests/browser/launcher.py's prompt-steered model (failures, slowness)."""
    argv = [sys.executable, "-m", "tests.browser.launcher"]
    for server in _serve("longform-serve-scripted", argv, tmp_path_factory.mktemp("serve-scripted")):
        yield server.url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh desktop-sized page. The test fails on any uncaught script error, console error or
    failed request, except a callable's error answer (the protocol's way to say "invalid")."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):  # see on_response
            problems.append(f"console: {msg.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400 and not CALLABLE.search(response.url):
            problems.append(f"HTTP {response.status} for {response.url}")

    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", console)
    page.on("response", on_response)
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``screenshot(page, "completed")`` → test-output/screenshots/<test>-completed.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, state: str, **options: Any) -> Path:
        path = SCREENSHOTS / f"{request.node.name.removeprefix('test_')}-{state}.png"
        page.screenshot(path=str(path), full_page=True, **options)
        return path

    return take
