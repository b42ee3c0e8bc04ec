"""The stitch on realistic segments, side by side in one run: the project's stitch, `ffmpeg -f
concat -c copy`, and the byte-append floor, each timed as a whole fresh process (start, imports,
work, exit), with the audio sync at every join.

    functions/venv/bin/python bench/stitch_bench.py      (bench/run.py prints these rows with the rest)

The segments are Veo-like: 1280x720 with film grain, H.264 High with B-frames at about 4 Mbit/s,
AAC 48 kHz stereo, 5 s each; six encodes, each copied six times, make the 36 inputs. FFmpeg comes
from the pinned bench-only package imageio-ffmpeg (bench/requirements.txt; `make bench` installs
it). Every figure is the median of ROUNDS runs, the three taken in turn in each round, with the
files in the page cache.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from bench.media_bench import STITCH_SECONDS as SECONDS  # noqa: E402
from bench.media_bench import STITCH_SEGMENTS as SEGMENTS  # noqa: E402
from bench.media_bench import Row, render_segments  # noqa: E402

DISTINCT = 6
BITRATE = 4_000_000
ROUNDS = 5
SYNC_TARGET_MS = 11
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}

# The stitch in a fresh process: starting Python and importing the stitcher are part of its figure,
# as starting ffmpeg is part of ffmpeg's. The child prints when (time.time()) it began running,
# had imported and had stitched, and its peak memory. "--as-before" opens the inputs as the stitch
# did before it read them from their headers (FFmpeg decodes each first picture; each opened twice).
_CHILD = """
import time
began = time.time()
import json, sys
from pathlib import Path
from longform.adapters import pyav_stitcher
def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
imported, base_kb = time.time(), peak_kb()
args = sys.argv[1:]
if args[0] == "--as-before":
    args = args[1:]
    pyav_stitcher._OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
    pyav_stitcher._first_timestamps = lambda stream: None
pyav_stitcher.concat_mp4([Path(p) for p in args[1:]], Path(args[0]))
print(json.dumps({"began": began, "imported": imported, "stitched": time.time(), "base_kb": base_kb,
                  "peak_kb": peak_kb()}))
"""


@dataclass(frozen=True)
class Run:
    """One fresh process: its wall time from spawn to exit, its CPU time (user and system), what it
    printed, and when (time.time()) it was spawned and had exited."""

    wall: float
    cpu: float
    printed: str
    spawned: float
    ended: float

    @property
    def phases(self) -> dict[str, float]:
        """A stitch child's wall time, phase by phase: start, imports, stitch, exit."""
        t = json.loads(self.printed)
        return {
            "start": t["began"] - self.spawned,
            "imports": t["imported"] - t["began"],
            "stitch": t["stitched"] - t["imported"],
            "exit": self.ended - t["stitched"],
        }


def make_veo_like_segments(folder: Path, count: int = SEGMENTS, distinct: int = DISTINCT) -> list[Path]:
    """``count`` Veo-like segments of SECONDS s in ``folder``: ``distinct`` encodes, copied in turn."""
    from devtools.media import veo_like

    previews = render_segments(folder / "previews", distinct)
    encodes = [veo_like(preview, folder / f"encode-{i}.mp4", bitrate=BITRATE) for i, preview in enumerate(previews)]
    shutil.rmtree(folder / "previews")
    paths = [folder / f"{i}.mp4" for i in range(count)]
    for i, path in enumerate(paths):
        shutil.copyfile(encodes[i % distinct], path)
    return paths


def bench_realistic_stitch() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="longform-bench-veo-stitch-") as name:
        tmp = Path(name)
        inputs = make_veo_like_segments(tmp / "segments")
        paths = [str(p) for p in inputs]
        total = sum(p.stat().st_size for p in inputs)
        ffmpeg, ffmpeg_words = _ffmpeg()
        listing = tmp / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in paths))
        stitched, concatenated, appended = tmp / "stitched.mp4", tmp / "ffmpeg.mp4", tmp / "appended.bin"
        stitch = [sys.executable, "-c", _CHILD]
        commands: dict[str, tuple[list[str], Path, bool]] = {  # argv, the file it writes, written by stdout
            "stitch": ([*stitch, str(stitched), *paths], stitched, False),
            "floor": (["cat", *paths], appended, True),
        }
        if ffmpeg:
            concat = ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", "-movflags", "+faststart"]
            commands["ffmpeg"] = ([ffmpeg, "-v", "error", *concat, str(concatenated)], concatenated, False)

        _run(*commands["floor"])  # the inputs into the page cache
        runs: dict[str, list[Run]] = {name: [] for name in commands}
        for _ in range(ROUNDS):  # in turn, so that a busy spell of the machine falls on all of them
            for name, command in commands.items():
                runs[name].append(_run(*command))
        before = min(_run([*stitch, "--as-before", str(tmp / "b.mp4"), *paths], tmp / "b.mp4").wall for _ in "12")
        six = json.loads(_run([*stitch, str(tmp / "six.mp4"), *paths[:6]], tmp / "six.mp4").printed)
        ours = _sync_ms(stitched)
        theirs = _sync_ms(concatenated) if ffmpeg else None
        sizes = {"stitch": stitched.stat().st_size, "ffmpeg": concatenated.stat().st_size if ffmpeg else 0}
        spare = _free_bytes(stitched)

    wall = {name: statistics.median(r.wall for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r.cpu for r in rs) for name, rs in runs.items()}
    phases = {k: statistics.median(r.phases[k] for r in runs["stitch"]) for k in ("start", "imports", "stitch", "exit")}
    memory = json.loads(runs["stitch"][0].printed)
    peak, base = memory["peak_kb"] / 1024, memory["base_kb"] / 1024
    per_input = (memory["peak_kb"] - six["peak_kb"]) / 1024 / (SEGMENTS - 6)

    what = f"{SEGMENTS} × {SECONDS} s Veo-like 720p ({SEGMENTS * SECONDS / 60:.0f} min, {total / 1e6:.0f} MB)"
    against = ""
    if "ffmpeg" in wall:
        ratio, cpu_ratio = wall["stitch"] / wall["ffmpeg"], cpu["stitch"] / cpu["ffmpeg"]
        against = f"{ratio:.2f}× ffmpeg concat (CPU time {cpu_ratio:.2f}×); "
    split = (
        f"Python start {phases['start']:.2f}, imports {phases['imports']:.2f}, "
        f"stitch {phases['stitch']:.2f}, exit {phases['exit']:.2f} s"
    )
    joins = SEGMENTS - 1
    rows = [
        Row(f"stitch {what}, fresh process", f"{wall['stitch']:.2f} s", against + split, "≤ 0.5× ffmpeg concat"),
        Row(
            "  the same, inputs opened as before (first picture decoded, twice)",
            f"{before:.2f} s",
            f"{before / wall['stitch']:.1f}× the stitch (best of 2)",
            "",
        ),
    ]
    if theirs is not None:
        rows.append(
            Row(
                "  ffmpeg -f concat -c copy -movflags +faststart, fresh process",
                f"{wall['ffmpeg']:.2f} s",
                f"CPU time {cpu['ffmpeg']:.2f} s (the stitch {cpu['stitch']:.2f} s); {ffmpeg_words}",
                "",
            )
        )
    else:
        rows.append(Row("  ffmpeg -f concat -c copy", "not run", ffmpeg_words, ""))
    rows.append(
        Row(
            "  byte-append floor (cat, fresh process)",
            f"{wall['floor']:.2f} s",
            f"{total / wall['floor'] / 1e9:.1f} GB/s; the stitch is {wall['stitch'] / wall['floor']:.1f}× it; "
            "not a playable video",
            "",
        )
    )
    rows.append(
        Row(
            f"  audio sync at the {joins} joins: stitch, worst",
            f"{ours[0]:.1f} ms",
            f"mean {ours[1]:.1f} ms, by decoded sample count; no drift ({ours[2]:+.2f} ms a join)",
            f"≤ {SYNC_TARGET_MS} ms",
        )
    )
    if theirs is not None:
        rows.append(
            Row(
                f"  audio sync at the {joins} joins: ffmpeg concat, worst",
                f"{theirs[0]:.0f} ms",
                f"mean {theirs[1]:.0f} ms: the audio falls {theirs[2]:.1f} ms further behind at each join",
                "",
            )
        )
    rows.append(
        Row(
            "  stitch output size",
            f"{sizes['stitch'] / 1e6:.1f} MB",
            (f"ffmpeg's {sizes['ffmpeg'] / 1e6:.1f} MB; " if sizes["ffmpeg"] else "")
            + f"{spare / 1e3:.0f} KB ({spare / sizes['stitch']:.2%}) is the index room left unused (free box)",
            "",
        )
    )
    rows.append(
        Row(
            "  stitch peak memory (fresh process)",
            f"{peak:.0f} MB",
            f"{peak - base:.0f} MB over the imports; {per_input:.2f} MB more per input (all are held open)",
            "",
        )
    )
    return rows


def _ffmpeg() -> tuple[str | None, str]:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, "imageio-ffmpeg is not installed: make bench installs bench/requirements.txt"
    from importlib.metadata import version

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    release = imageio_ffmpeg.get_ffmpeg_version().split("-")[0].removeprefix("n")
    return exe, f"FFmpeg {release} from imageio-ffmpeg {version('imageio-ffmpeg')}"


def _run(argv: list[str], writes: Path, to_stdout: bool = False) -> Run:
    """``argv`` as a fresh process, writing ``writes`` anew (removed first, untimed: a stitch writes
    a new file), by itself or, ``to_stdout``, through its standard output."""
    writes.unlink(missing_ok=True)
    with open(writes if to_stdout else os.devnull, "wb") as sink:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spawned, start = time.time(), time.perf_counter()
        done = subprocess.run(argv, env=_ENV, check=True, stdout=sink if to_stdout else subprocess.PIPE)
        wall, ended = time.perf_counter() - start, time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(wall, cpu, "" if to_stdout else done.stdout.decode(), spawned, ended)


def _free_bytes(path: Path) -> int:
    """The bytes of an MP4's top-level ``free`` boxes."""
    total, pos, end = 0, 0, path.stat().st_size
    with open(path, "rb") as f:
        while pos + 8 <= end:
            f.seek(pos)
            header = f.read(16)
            size = int.from_bytes(header[:4], "big")
            if size == 1:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                size = end - pos
            if header[4:8] == b"free":
                total += size
            pos += max(size, 8)
    return total


def _sync_ms(path: Path) -> tuple[float, float, float]:
    """Where each scene's tone burst starts against its video, over the joins: the worst and mean
    offset (ms), and the offset's growth per join (the slope of a least-squares line, ms)."""
    from devtools.media import audio_onsets

    onsets = audio_onsets(path)
    if len(onsets) != SEGMENTS:
        raise AssertionError(f"{path.name}: found {len(onsets)} segment starts in the audio, not {SEGMENTS}")
    offsets = [(t - i * SECONDS) * 1000 for i, t in enumerate(onsets)][1:]  # after each join
    joins = list(range(1, SEGMENTS))
    slope = statistics.linear_regression(joins, offsets).slope
    return max(map(abs, offsets)), statistics.fmean(map(abs, offsets)), slope


def main() -> None:
    for row in bench_realistic_stitch():
        print(f"{row.measure:<78} {row.result:>9}   {row.detail:<60} {row.target}")


if __name__ == "__main__":
    main()
