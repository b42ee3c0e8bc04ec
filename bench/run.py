"""Longform's benchmark: prints one table; every ratio is measured within this one run.

    functions/venv/bin/python bench/run.py        (or: make bench)

Rows: the preview renderer's speed, the stitch against a plain file copy, the stitch on Veo-like
segments against `ffmpeg -f concat -c copy` and the byte-append floor (fresh processes, audio sync
at every join), the media checks, chain=false concurrency against the ideal, and the
orchestration overhead of a whole job.
"""

from __future__ import annotations

import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "functions"), str(Path(__file__).resolve().parents[1])]

from bench.cloud_bench import bench_gcs_stitch  # noqa: E402
from bench.cold_import import bench_cold_import  # noqa: E402
from bench.media_bench import Row, bench_integrity, bench_renderer, bench_stitch  # noqa: E402
from bench.polling_bench import bench_polling  # noqa: E402
from bench.stitch_bench import bench_realistic_stitch  # noqa: E402
from longform import bootstrap  # noqa: E402
from longform.adapters.preview_video_model import PreviewVideoModel, render_preview  # noqa: E402
from longform.config import Settings  # noqa: E402
from longform.job import Job, Status  # noqa: E402
from longform.ports import BlobStore, Operation, SegmentSpec, VideoModel  # noqa: E402
from longform.request import validate_request  # noqa: E402


class SleepingModel:
    """A model stand-in that takes ``seconds`` per segment, then delivers a ready-made file."""

    def __init__(self, blobs: BlobStore, seconds: float, clip: Path) -> None:
        self.blobs, self.seconds, self.clip = blobs, seconds, clip

    def start(self, spec: SegmentSpec) -> str:
        time.sleep(self.seconds)
        self.blobs.upload(spec.output_key, self.clip)
        return spec.output_key

    def poll(self, operation: str) -> Operation:
        return Operation(operation, done=True, key=operation)


class Timed:
    """Adds up the wall time spent inside one method of an adapter (threads included)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def measure(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - start

    def wrap(self, fn: Callable[..., object]) -> Callable[..., object]:
        def timed(*args: object, **kwargs: object) -> object:
            with self.measure():
                return fn(*args, **kwargs)

        return timed


def run_job(local: bootstrap.Local, prompts: list[str], **fields: object) -> tuple[Job, float]:
    job = Job.new(validate_request({"prompts": prompts, **fields}), bootstrap.LOCAL_USER.user_id)
    local.pipeline.jobs.create(job)
    start = time.perf_counter()
    done = local.runner.run(job.job_id)
    assert done.status is Status.COMPLETED, done.error
    return done, time.perf_counter() - start


def bench_concurrency(tmp: Path, segments: int = 12, latency: float = 1.0) -> list[Row]:
    clip = tmp / "clip.mp4"
    render_preview(clip, prompt="clip", seconds=4, width=1280, height=720, generate_audio=True, seed=1)
    rows = []
    for concurrency in (1, 4):
        settings = Settings(data_dir=tmp / f"c{concurrency}", concurrency=concurrency, poll_seconds=0)
        local = bootstrap.local(settings, model=lambda blobs: SleepingModel(blobs, latency, clip))
        job, _ = run_job(local, [f"scene {i}" for i in range(segments)], chain=False, segmentSeconds=4)
        generating = _seconds_between(job.timings["startedAt"], job.timings["stitchStartedAt"])
        ideal = math.ceil(segments / concurrency) * latency
        rows.append(
            Row(
                f"concurrency {concurrency}: {segments} segments × {latency:.0f} s model",
                f"{generating:.2f} s",
                f"{generating / ideal:.2f}× ideal ({ideal:.0f} s)",
                "≤ 1.2× ideal" if concurrency == 4 else "",
            )
        )
    return rows


def bench_overhead(tmp: Path) -> list[Row]:
    render, stitch, frames, checks = Timed(), Timed(), Timed(), Timed()

    def model(blobs: BlobStore) -> VideoModel:
        preview = PreviewVideoModel(blobs)
        preview.start = render.wrap(preview.start)  # type: ignore[method-assign]
        return preview

    local = bootstrap.local(Settings(data_dir=tmp / "overhead", poll_seconds=0), model=model)
    local.pipeline.stitcher.start = stitch.wrap(local.pipeline.stitcher.start)  # type: ignore[method-assign]
    local.pipeline.frames.last_frame = frames.wrap(local.pipeline.frames.last_frame)  # type: ignore[method-assign]
    local.pipeline.checker.check = checks.wrap(local.pipeline.checker.check)  # type: ignore[method-assign]
    _, wall = run_job(local, ["A harbour at dawn", "Boats leave the harbour", "The open sea at noon"])
    media = frames.seconds + checks.seconds
    engine = wall - render.seconds - stitch.seconds - media
    return [
        Row(
            "whole job: 3 chained scenes × 8 s, 720p",
            f"{wall:.2f} s",
            f"render {render.seconds:.2f} s, stitch {stitch.seconds:.2f} s, last frames {frames.seconds:.2f} s, "
            f"media checks {checks.seconds:.2f} s",
            "",
        ),
        Row(
            "orchestration overhead (wall − render − stitch)",
            f"{wall - render.seconds - stitch.seconds:.2f} s",
            f"{(wall - render.seconds - stitch.seconds) / wall:.1%} of wall (last frames and media checks included)",
            "≤ 5 %",
        ),
        Row(
            "  of which last frames and media checks",
            f"{media:.2f} s",
            f"{media / wall:.1%} of wall: a full decode of each scene, the final video's check, two last frames",
            "",
        ),
        Row("  of which the engine (steps, SQLite, polling)", f"{engine:.2f} s", f"{engine / wall:.1%} of wall", ""),
    ]


def _seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def main() -> None:
    console = Console()
    table = Table("measure", "result", "ratio / detail", "target", title="Longform benchmark")
    with tempfile.TemporaryDirectory(prefix="longform-bench-") as name:
        tmp = Path(name)
        for part in (bench_renderer, bench_stitch, bench_realistic_stitch, bench_integrity, bench_gcs_stitch):
            for row in part():
                table.add_row(*row)
        for part in (bench_concurrency, bench_overhead):
            for row in part(tmp):
                table.add_row(*row)
        for row in bench_cold_import():
            table.add_row(*row)
        for row in bench_polling():
            table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
