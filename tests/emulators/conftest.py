"""The emulator end-to-end tier: one EmulatorSuite for each module that uses it
(devtools/emulator_suite.py), on free ports, with Inngest's sleeps and backoff shortened. Stopping
it fails the run if any port it served on is still open. A suite already running in this working
tree (another test session) is waited for: two would share functions/.env.local."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.emulator_suite import EmulatorSuite, Ports, SuiteUnavailable
from tests.conftest import unavailable

SLEEP_FACTOR = 0.05  # Inngest sleeps and retry backoff (10 s, 20 s…) at a twentieth
# With the Pub/Sub emulator the Transcoder's notice ends each job; the poller waits this long after
# a stitch started before it polls, so a job ended sooner was ended by the notice.
SAFETY_NET_SECONDS = 30
TRANSCODER_SECONDS = 1.0  # how long the Transcoder stand-in's jobs run
LOCK_WAIT = 900.0  # seconds to wait for another session's suite to stop


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorSuite]:
    emulators = EmulatorSuite(
        tmp_path_factory.mktemp("emulator-suite"),
        ports=Ports.free(),
        sleep_factor=SLEEP_FACTOR,
        poll_seconds=1,
        stitch_poll_budget_seconds=30,
        lock_wait=LOCK_WAIT,
        stitch_safety_net_seconds=SAFETY_NET_SECONDS,
        transcoder_seconds=TRANSCODER_SECONDS,
    )
    try:
        emulators.start()
    except SuiteUnavailable as exc:
        unavailable(f"the Firebase emulator suite: {exc}")
    yield emulators
    emulators.stop()  # raises if a port is left open: the run fails
