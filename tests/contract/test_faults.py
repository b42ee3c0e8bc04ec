"""Fault injection: every call to every port fails transiently with probability 0.3 — the job store,
the blob store, the video model, the frame extractor, the stitcher, the media checker — on both engines, for 20 jobs,
chained and unchained. Every job completes, and the only scenes generated more than once are
those whose start the model accepted before its answer was lost (a failure *after* the call).

The faults are seeded per call (a hash of the seed, the call and how many times it was made), so
a run is repeatable whatever order threads make their calls in. The counts are printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from longform.errors import TransientError
from longform.job import Status
from tests.conftest import FakeWorld
from tests.contract.test_engines import Engine, InngestEngine, LocalEngine
from tests.fakes import FakeVideoModel, InMemoryBlobStore

SEED = 20261129
RATE = 0.3
JOBS = 20
PURE = {"uri", "key_of"}  # names, not calls: they cannot fail


class Faults:
    """Decides, per call, whether it fails — and for the model's start, whether before or after."""

    def __init__(self, seed: int, rate: float) -> None:
        self.seed, self.rate = seed, rate
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lost: Counter[tuple[str, int]] = Counter()  # (job, scene) → starts accepted, answer lost
        self._lock = threading.Lock()

    def draw(self, what: str, call: str) -> float:
        with self._lock:
            self.calls[call] += 1
            n = self.calls[call]
        digest = hashlib.sha256(f"{self.seed}|{call}|{n}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def wrap(self, name: str, target: Any) -> Any:
        faults = self

        class Flaky:
            def __getattr__(self, method: str) -> Any:
                real = getattr(target, method)
                if method.startswith("_") or method in PURE or not callable(real):
                    return real

                def call(*args: Any, **kwargs: Any) -> Any:
                    key = f"{name}.{method}({args!r})"
                    chance = faults.draw(name, key)
                    if chance < faults.rate / 2 or (
                        chance < faults.rate and not (name == "model" and method == "start")
                    ):
                        faults.injected[f"{name}.{method}"] += 1
                        raise TransientError(f"injected: {name}.{method} failed")
                    result = real(*args, **kwargs)
                    if chance < faults.rate:  # the model accepted the start; its answer is lost on the way
                        faults.injected["model.start (answer lost)"] += 1
                        spec = args[0]
                        faults.lost[(spec.job_id, spec.index)] += 1
                        raise TransientError("injected: the model's answer was lost")
                    return result

                return call

        return Flaky()


def flaky_world(make_world: Callable[..., FakeWorld], faults: Faults) -> FakeWorld:
    blobs = InMemoryBlobStore()
    world = make_world(blobs=blobs, model=FakeVideoModel(blobs, polls_until_done=1))
    real_pipeline = world.pipeline

    def pipeline() -> Any:
        p = real_pipeline()
        return dataclasses.replace(
            p,
            jobs=faults.wrap("jobs", p.jobs),
            blobs=faults.wrap("blobs", p.blobs),
            model=faults.wrap("model", p.model),
            frames=faults.wrap("frames", p.frames),
            stitcher=faults.wrap("stitcher", p.stitcher),
            checker=faults.wrap("checker", p.checker),
        )

    world.pipeline = pipeline  # type: ignore[method-assign]
    return world


@pytest.mark.parametrize("engine", [LocalEngine(), InngestEngine()], ids=lambda engine: engine.name)
def test_with_every_port_call_failing_30_percent_every_job_completes_paying_only_for_lost_answers(
    engine: Engine, make_world: Callable[..., FakeWorld], capsys: pytest.CaptureFixture[str]
) -> None:
    faults = Faults(SEED, RATE)
    world = flaky_world(make_world, faults)
    jobs = [world.submit(3, chain=n % 2 == 0) for n in range(JOBS)]  # the submits themselves are not injected

    results = [engine.run(world, job_id) for job_id in jobs]

    outcome = Counter(job.status.value for job in results)
    generations = Counter((spec.job_id, spec.index) for spec in world.model.started)
    extra = {scene: n - 1 for scene, n in generations.items() if n > 1}
    with capsys.disabled():
        print(
            f"\n[{engine.name}] {outcome['completed']}/{JOBS} completed; {sum(faults.calls.values())} port calls, "
            f"{sum(faults.injected.values())} failed on purpose ({dict(faults.injected)}); "
            f"generations beyond one a scene: {sum(extra.values())}, answers lost after the model accepted: "
            f"{sum(faults.lost.values())}"
        )
    failed = [(job.job_id, job.error_step, job.error) for job in results if job.status is not Status.COMPLETED]
    assert failed == [], failed
    assert extra == dict(faults.lost)  # a scene is paid for again only where its first answer was lost
