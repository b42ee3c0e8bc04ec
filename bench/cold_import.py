"""The cold start of a deployed function: ``import main`` in fresh processes, as every instance
of every function does when it starts (and ``firebase deploy`` when it discovers them).

Each process runs the venv's Python in ``functions/`` with no credentials, emulator or secret in
its environment, times ``import main`` (the interpreter's own start excluded) and reads its peak
RSS, then times what the first Veo step adds: the Veo adapter and google-genai. Alternating with
those, processes time the floor: the imports of the firebase_functions decorators alone, which
``main.py`` cannot do without (the same machine, the same minutes: on a busy machine both rise).
One process runs first, untimed, so that every later one finds the bytecode compiled.

    functions/venv/bin/python bench/cold_import.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from bench.media_bench import Row  # noqa: E402

FUNCTIONS = ROOT / "functions"
RUNS = 5
TARGET_MS = 350

_PROBE = """
import json, resource, sys, time
def rss_mb():  # VmHWM: ru_maxrss would count the bench's own memory, which Linux carries over exec
    if sys.platform == "linux":
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
start = time.perf_counter()
if sys.argv[1] == "floor":
    from firebase_functions import https_fn, options, scheduler_fn
    print(json.dumps(dict(floor_ms=(time.perf_counter() - start) * 1000)))
    sys.exit()
import main
main_ms, main_mb = (time.perf_counter() - start) * 1000, rss_mb()
start = time.perf_counter()
import longform.adapters.veo_video_model
veo_ms, veo_mb = (time.perf_counter() - start) * 1000, rss_mb()
print(json.dumps(dict(main_ms=main_ms, main_mb=main_mb, veo_ms=veo_ms, veo_mb=veo_mb)))
"""


def _python() -> str:
    venv = FUNCTIONS / "venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _probe(what: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST", "FIRESTORE", "GOOGLE", "FIREBASE"))}
    argv = [_python(), "-c", _PROBE, what]
    result = subprocess.run(argv, cwd=FUNCTIONS, env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def bench_cold_import(runs: int = RUNS) -> list[Row]:
    _probe("main")  # compiles what is not compiled yet
    probes: dict[str, list[float]] = {}
    for _ in range(runs):  # alternated, so that both see the machine in the same state
        for what in ("main", "floor"):
            for key, value in _probe(what).items():
                probes.setdefault(key, []).append(value)

    def median(key: str) -> float:
        return statistics.median(probes[key])

    def spread(key: str) -> str:
        return f"{min(probes[key]):.0f}–{max(probes[key]):.0f} ms"

    main_ms, floor_ms = median("main_ms"), median("floor_ms")
    return [
        Row(
            "cold import of main.py (fresh processes)",
            f"{main_ms:.0f} ms",
            f"peak RSS {median('main_mb'):.0f} MB; median of {runs}, {spread('main_ms')}",
            f"≤ {TARGET_MS} ms",
        ),
        Row(
            "  of which firebase_functions' decorators alone",
            f"{floor_ms:.0f} ms",
            f"https_fn and scheduler_fn with firebase_admin, Flask, functions-framework; main.py adds "
            f"{main_ms - floor_ms:.0f} ms",
            "",
        ),
        Row(
            "  first Veo step's imports (Veo adapter, google-genai)",
            f"{median('veo_ms'):.0f} ms",
            f"+{median('veo_mb') - median('main_mb'):.0f} MB RSS; {spread('veo_ms')}",
            "",
        ),
    ]


if __name__ == "__main__":
    for row in bench_cold_import():
        print(" | ".join(row))
