"""Shared fixtures. Fakes behind the ports live in tests/fakes.py; the servers the tests start (the
Firestore and Cloud Storage emulators, the stand-ins) and the media probes in devtools/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from longform.adapters.sqlite import Database
from longform.job import Job
from longform.local_runner import LocalRunner, RetryPolicy
from longform.prices import PRICES, Pricing
from longform.request import validate_request
from longform.workflow import Pipeline
from tests.fakes import (
    FakeFrameExtractor,
    FakeMediaChecker,
    FakeStitcher,
    FakeVideoModel,
    InMemoryBlobStore,
    InMemoryJobStore,
    SimClock,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from devtools.firestore_emulator import FirestoreEmulator
    from devtools.pubsub_emulator import PubsubEmulator
    from devtools.storage_emulator import StorageEmulator


# Scenes priced as Veo 3.1 Fast (with audio, $0.15 a second), the stitch as Transcoder HD minutes.
PRICING = Pricing(PRICES, "veo-3.1-fast-generate-001", "transcoder", estimated=False)


@dataclass
class FakeWorld:
    """A pipeline made of fakes, a real SQLite step memo, the runner's backoff recorded in
    ``sleeps``, and a simulated clock for the waits inside poll steps (``clock.sleeps``)."""

    db: Database
    jobs: InMemoryJobStore = field(default_factory=InMemoryJobStore)
    blobs: InMemoryBlobStore = field(default_factory=InMemoryBlobStore)
    sleeps: list[float] = field(default_factory=list)
    clock: SimClock = field(default_factory=SimClock)
    model: FakeVideoModel | None = None
    stitcher: FakeStitcher | None = None
    frames: FakeFrameExtractor | None = None
    checker: FakeMediaChecker | None = None

    def __post_init__(self) -> None:
        self.model = self.model or FakeVideoModel(self.blobs)
        self.stitcher = self.stitcher or FakeStitcher(self.blobs)
        self.frames = FakeFrameExtractor(self.blobs)
        self.checker = self.checker or FakeMediaChecker(self.blobs)

    def pipeline(self) -> Pipeline:
        assert self.model and self.stitcher and self.frames and self.checker
        return Pipeline(
            self.jobs,
            self.blobs,
            self.model,
            self.frames,
            self.stitcher,
            self.checker,
            PRICING,
            poll_seconds=5,
            poll_budget_seconds=60,
            max_wait_seconds=240,  # four poll steps
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def runner(self, attempts: int = 3, concurrency: int = 4) -> LocalRunner:
        return LocalRunner(self.pipeline(), self.db, RetryPolicy(attempts, 1.0, 60.0), concurrency, self.sleeps.append)

    def submit(self, prompts: int = 3, **fields: object) -> str:
        request = validate_request({"prompts": [f"scene {i}" for i in range(prompts)], **fields})
        job = Job.new(request, "user-1")
        job.cost = PRICING.estimate(request)  # as the trigger prices it
        self.jobs.create(job)
        return job.job_id


@pytest.fixture
def world(tmp_path: Path) -> FakeWorld:
    return FakeWorld(Database(tmp_path / "longform.db"))


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., FakeWorld]:
    def make(**kwargs: object) -> FakeWorld:
        return FakeWorld(Database(tmp_path / "longform.db"), **kwargs)  # type: ignore[arg-type]

    return make


# -- Firestore emulator ---------------------------------------------------------------------------


def unavailable(reason: str) -> NoReturn:
    """A server this machine cannot start: skip locally, but fail under CI, which must run every test."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: tests needing this server must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """One emulator for the session, enforcing firestore.rules; FIRESTORE_EMULATOR_HOST points at it.
    Tests keep apart with unique ids (or a collection of their own), or call ``reset()``."""
    from devtools.firestore_emulator import EmulatorUnavailable, running_emulator  # imports google.cloud

    try:
        with (
            running_emulator(log_dir=tmp_path_factory.mktemp("firestore")) as emulator,
            pytest.MonkeyPatch.context() as env,
        ):
            env.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
            yield emulator
    except EmulatorUnavailable as exc:
        unavailable(f"Firestore emulator: {exc}")


# -- Cloud Storage emulator -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def storage_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageEmulator]:
    """One emulator for the session, with ``STORAGE_EMULATOR_HOST`` pointing at it until the end."""
    from devtools.storage_emulator import ENV, StorageEmulatorUnavailable, start  # imports google.cloud

    try:
        emulator = start(tmp_path_factory.mktemp("storage-emulator"))
    except StorageEmulatorUnavailable as exc:
        unavailable(f"Cloud Storage emulator: {exc}")
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv(ENV, emulator.url)
            yield emulator
    finally:
        emulator.server.stop()


# -- Pub/Sub emulator ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubsubEmulator]:
    """One Pub/Sub emulator (the Google Cloud CLI's) for the session. PUBSUB_EMULATOR_HOST is left
    alone: clients are made with ``pubsub_emulator.subscriber()``, or pointed at its ``host``."""
    from devtools.pubsub_emulator import PubsubEmulatorUnavailable, running_emulator

    try:
        with running_emulator(tmp_path_factory.mktemp("pubsub")) as emulator:
            yield emulator
    except PubsubEmulatorUnavailable as exc:
        unavailable(f"Pub/Sub emulator: {exc}")


# -- Chromium, for the browser tests and the Firebase-mode page on the emulators --------------------

CHROMIUM = os.environ.get("LONGFORM_CHROMIUM", "/usr/bin/chromium")
# The network is closed here: nothing that phones home, no QUIC, no sandbox (root in a container).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for the session, driven by Playwright (one sync Playwright a process)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (make test installs it)")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        unavailable(f"no Chromium at {CHROMIUM} (make test installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
