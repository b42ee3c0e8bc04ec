"""The emulator end-to-end tier: one EmulatorSuite for the module's tests (devtools/emulator_suite.py),
on free ports, with Inngest's sleeps and backoff shortened. Stopping it fails the run if any port it
served on is still open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.emulator_suite import EmulatorSuite, Ports, SuiteUnavailable
from tests.conftest import unavailable

SLEEP_FACTOR = 0.05  # Inngest sleeps and retry backoff (10 s, 20 s…) at a twentieth


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorSuite]:
    emulators = EmulatorSuite(
        tmp_path_factory.mktemp("emulator-suite"),
        ports=Ports.free(),
        sleep_factor=SLEEP_FACTOR,
        poll_seconds=1,
        stitch_poll_budget_seconds=30,
    )
    try:
        emulators.start()
    except SuiteUnavailable as exc:
        unavailable(f"the Firebase emulator suite: {exc}")
    yield emulators
    emulators.stop()  # raises if a port is left open: the run fails
