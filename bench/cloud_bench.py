"""The `ffmpeg` stitch backend as it runs in the function: download the segments from Cloud
Storage, stitch them with PyAV, upload the result — against the Cloud Storage emulator.

The Transcoder backend cannot be timed here (it needs Google Cloud); its price is public.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import storage  # noqa: E402

from bench.media_bench import STITCH_SECONDS, STITCH_SEGMENTS, Row, render_segments  # noqa: E402
from devtools.servers import ServerProcess, free_port, http_ready  # noqa: E402
from longform.adapters.gcs_blob_store import GcsBlobStore  # noqa: E402
from longform.adapters.pyav_stitcher import PyavStitcher  # noqa: E402
from longform.ports import StitchSpec  # noqa: E402

# Cloud Functions (2nd gen) bills like Cloud Run: per vCPU-second and GiB-second. inngest_api
# runs with 2 vCPU and 2 GiB. Transcoder API bills per minute of output, HD (720p–1080p).
VCPU_SECOND_USD = 0.000024
GIB_SECOND_USD = 0.0000025
TRANSCODER_HD_MINUTE_USD = 0.030


def bench_gcs_stitch() -> list[Row]:
    port = free_port()
    emulator = ServerProcess(
        "gcs-bench",
        [str(Path(sys.executable).parent / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port",
         str(port), "--in-memory"],
        port,
        ready=http_ready(f"http://127.0.0.1:{port}/"),
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="longform-bench-gcs-") as name, emulator:
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"  # the client reads it
        client = storage.Client(project="bench", credentials=AnonymousCredentials())
        client.create_bucket("bench")
        blobs = GcsBlobStore(client, "bench")
        keys = []
        for i, path in enumerate(render_segments(Path(name) / "segments")):
            keys.append(f"jobs/bench/segments/{i}.mp4")
            blobs.upload(keys[-1], path)
        spec = StitchSpec(
            "bench", "u", "bench", tuple(keys), "jobs/bench/final/video.mp4", 1280, 720, STITCH_SECONDS, True
        )
        start = time.perf_counter()
        PyavStitcher(blobs).start(spec)
        wall = time.perf_counter() - start

    minutes = STITCH_SEGMENTS * STITCH_SECONDS / 60
    per_minute = wall / minutes
    function_usd = per_minute * (2 * VCPU_SECOND_USD + 2 * GIB_SECOND_USD)
    return [
        Row(
            f"ffmpeg backend via Cloud Storage: {STITCH_SEGMENTS} × {STITCH_SECONDS} s 720p",
            f"{wall:.2f} s",
            f"{per_minute:.2f} s and ${function_usd:.6f} of function time per minute of video",
            "",
        ),
        Row(
            "transcoder backend (not measurable offline)",
            "minutes",
            f"${TRANSCODER_HD_MINUTE_USD:.3f} per minute of HD output (list price)",
            "",
        ),
    ]


if __name__ == "__main__":
    for row in bench_gcs_stitch():
        print(" | ".join(row))
