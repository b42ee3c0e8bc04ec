"""Media benchmark: the preview renderer's speed, and the stitch against the cost of copying the bytes.

    functions/venv/bin/python bench/media_bench.py      (bench/run.py prints these rows with the rest)

Every ratio is measured within one run, on this machine, with warm page cache for both sides.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from longform.adapters.preview_video_model import render_preview  # noqa: E402
from longform.adapters.pyav_stitcher import concat_mp4  # noqa: E402

STITCH_SEGMENTS = 36
STITCH_SECONDS = 5


class Row(NamedTuple):
    measure: str
    result: str
    detail: str
    target: str


def bench_renderer() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="longform-bench-render-") as tmp:
        seconds = 8
        for label, (width, height), target in (("720p", (1280, 720), "≥ 5× real time"), ("1080p", (1920, 1080), "")):
            out = Path(tmp) / f"{label}.mp4"

            def render(out: Path = out, width: int = width, height: int = height) -> None:
                render_preview(
                    out,
                    prompt="A lighthouse on a cliff in a storm, waves breaking, cinematic",
                    seconds=seconds,
                    width=width,
                    height=height,
                    generate_audio=True,
                    seed=1,
                    label="scene 1",
                )

            wall = _best_of(3, render)
            rows.append(
                Row(
                    f"preview render {label}, {seconds} s with audio",
                    f"{wall:.2f} s",
                    f"{seconds / wall:.1f}× real time, {out.stat().st_size / 1e6:.1f} MB",
                    target,
                )
            )
    return rows


def bench_stitch() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="longform-bench-stitch-") as name:
        tmp = Path(name)
        inputs = render_segments(tmp / "segments")
        total = sum(p.stat().st_size for p in inputs)
        out, floor_out = tmp / "stitched.mp4", tmp / "copied.bin"

        stitch = _best_of(5, lambda: concat_mp4(inputs, out))
        floor = _best_of(5, lambda: _copy_all(inputs, floor_out))
        peak_mb, base_mb = _stitch_peak_rss(inputs, tmp / "rss.mp4")
        worst_ms = _worst_audio_offset_ms(out)

    minutes = STITCH_SEGMENTS * STITCH_SECONDS / 60
    what = f"{STITCH_SEGMENTS} × {STITCH_SECONDS} s 720p with audio ({minutes:.0f} min, {total / 1e6:.0f} MB)"
    return [
        Row(f"stitch {what}", f"{stitch:.3f} s", f"{stitch / floor:.1f}× the copy floor", "≤ 1.5× copy floor"),
        Row("  copy floor: the same files copied into one", f"{floor:.3f} s", f"{total / floor / 1e9:.1f} GB/s", ""),
        Row("  stitch peak memory (child process)", f"{peak_mb:.0f} MB", f"{peak_mb - base_mb:.0f} MB over import", ""),
        Row(
            "  stitch audio sync, worst segment start",
            f"{worst_ms:.1f} ms",
            f"over {STITCH_SEGMENTS - 1} joins, by decoded sample count",
            "≤ 11 ms",
        ),
    ]


def bench_integrity() -> list[Row]:
    """The media check a segment passes before it is accepted (a full decode), and the final
    video's (every packet read, audio decoded, no frame decoding), on the renderer's segments and
    on Veo-like ones (film grain, H.264 High with B-frames at about 5 Mbit/s, AAC 48 kHz stereo)."""
    from devtools.media import veo_like
    from longform.adapters.pyav_checker import check_file
    from longform.ports import MediaExpectation

    with tempfile.TemporaryDirectory(prefix="longform-bench-check-") as name:
        tmp = Path(name)
        preview = tmp / "preview.mp4"
        render_preview(
            preview, prompt="A harbour at dusk", seconds=8, width=1280, height=720, generate_audio=True, seed=1
        )
        veo = veo_like(preview, tmp / "veo-like.mp4")
        segment = MediaExpectation(8, 1280, 720)
        rows = []
        for label, path in (("preview", preview), ("Veo-like", veo)):
            full = _best_of(3, lambda path=path: check_file(path, segment))
            cheap = _best_of(3, lambda path=path: check_file(path, segment, decode_video=False))
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            rows.append(Row(f"check a {label} segment, 8 s 720p: full decode", f"{full:.2f} s", size, ""))
            rows.append(Row("  the same without frame decoding", f"{cheap * 1000:.0f} ms", "", ""))
        five = tmp / "veo-like-5s.mp4"
        render_preview(
            tmp / "p5.mp4", prompt="A harbour", seconds=5, width=1280, height=720, generate_audio=True, seed=1
        )
        veo_like(tmp / "p5.mp4", five)
        final = tmp / "final.mp4"
        concat_mp4([five] * STITCH_SEGMENTS, final)
        whole = MediaExpectation(STITCH_SEGMENTS * STITCH_SECONDS, 1280, 720)
        cheap = _best_of(3, lambda: check_file(final, whole, decode_video=False))
        what = f"{STITCH_SEGMENTS} × {STITCH_SECONDS} s Veo-like, {final.stat().st_size / 1e6:.0f} MB"
        rows.append(Row(f"check the final video ({what}), no frame decoding", f"{cheap:.2f} s", "", ""))
    return rows


def render_segments(folder: Path, count: int = STITCH_SEGMENTS) -> list[Path]:
    """``count`` preview scenes of STITCH_SECONDS s, 1280x720 with audio, each its own picture."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i}.mp4" for i in range(count)]
    for i, path in enumerate(paths):
        render_preview(
            path,
            prompt=f"Scene {i + 1}: the harbour, seen from a different angle",
            seconds=STITCH_SECONDS,
            width=1280,
            height=720,
            generate_audio=True,
            seed=1,
            label=f"scene {i + 1}",
        )
    return paths


def _copy_all(inputs: list[Path], out: Path) -> None:
    with open(out, "wb") as dst:
        for path in inputs:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)


def _best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# VmHWM is the peak RSS of this process image; ru_maxrss would not do: Linux carries it over
# from the parent across fork and exec, so the child would report the benchmark's own peak.
_RSS_CHILD = """
import json, sys
from pathlib import Path
from longform.adapters.pyav_stitcher import concat_mp4
def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = peak_kb()
concat_mp4([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]))
print(json.dumps({"base_kb": base, "peak_kb": peak_kb()}))
"""


def _stitch_peak_rss(inputs: list[Path], out: Path) -> tuple[float, float]:
    """Peak resident memory (MB) of a fresh process that stitches, and its level right after imports.
    C allocations (FFmpeg's buffers) count too, unlike tracemalloc. Linux only (/proc)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(out), *map(str, inputs)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    kb = json.loads(done.stdout)
    return kb["peak_kb"] / 1024, kb["base_kb"] / 1024


def _worst_audio_offset_ms(path: Path) -> float:
    from devtools.media import audio_onsets

    onsets = audio_onsets(path)
    if len(onsets) != STITCH_SEGMENTS:
        raise AssertionError(f"found {len(onsets)} segment starts in the stitched audio, not {STITCH_SEGMENTS}")
    return max(abs(t - i * STITCH_SECONDS) for i, t in enumerate(onsets)) * 1000


def main() -> None:
    for row in [*bench_renderer(), *bench_stitch(), *bench_integrity()]:
        print(f"{row.measure:<72} {row.result:>10}   {row.detail:<45} {row.target}")


if __name__ == "__main__":
    main()
