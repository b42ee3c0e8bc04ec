"""A broken segment never becomes a completed video.

A corpus of bad media made from real rendered segments — cut short with the index first and last,
bytes overwritten early and mid-file, empty, not a video, another frame rate, another sample rate,
another channel layout, no audio — and what becomes of each file in the order the workflow uses:
the checker rejects it in words, or the stitcher heals it (audio resampled, silence) or refuses
it; and no case becomes a stitched video that fails a full decode or has the wrong length.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PIL import Image

from devtools.media import (
    audio_onsets,
    overwritten,
    packet_spans,
    probe,
    reencode,
    remux,
    truncated,
    veo_like,
    with_audio,
)
from longform.adapters.local_blob_store import LocalBlobStore
from longform.adapters.pyav_checker import PyavMediaChecker, check_file, media_problems
from longform.adapters.pyav_stitcher import concat_mp4
from longform.errors import BrokenMedia, PermanentError
from longform.ports import MediaExpectation

pytestmark = pytest.mark.slow

Render = Callable[..., Path]
SEGMENT = MediaExpectation(seconds=4, width=320, height=180)
RATE = 48_000
HALF_AAC_FRAME = 512
RAW = r"Errno|\d{7,}|\('\w+', \d|avcodec_|\[h264\]"  # FFmpeg's errno and C names, a repr'd tuple


@pytest.fixture(scope="session")
def segments(render: Render) -> list[Path]:
    """Three good 4 s segments (the same renders as the stitcher's tests)."""
    return [render(f"seg-{i}", prompt=f"scene number {i}", seconds=4, label=f"scene {i + 1}") for i in range(3)]


@dataclass(frozen=True)
class Case:
    make: Callable[[Path, Path], Path]  # (a good segment, a folder) -> the file to check
    rejected: str | None  # the checker's words (a regex), or None when it accepts the file
    stitcher: str  # "refuses: <regex>", "copies" (it cannot see the damage), "resamples", "silence"
    expected: MediaExpectation = SEGMENT


def inside_packet(path: Path, seconds: float, kind: str = "video", length: int = 32) -> int:
    """Where ``length`` bytes in the middle of the ``kind`` packet that plays at ``seconds`` start."""
    pos, size, _ = min(packet_spans(path, kind), key=lambda span: abs(span[2] - seconds))
    assert size >= length + 8
    return pos + (size - length) // 2


def make_png(good: Path, folder: Path) -> Path:
    out = folder / "picture.mp4"
    Image.new("RGB", (320, 180), (200, 30, 30)).save(out, format="PNG")
    return out


def make_text(good: Path, folder: Path) -> Path:
    out = folder / "error.mp4"
    out.write_text('{"error": {"code": 503, "message": "The service is currently unavailable."}}\n')
    return out


def make_quiet(good: Path, folder: Path) -> Path:
    out = folder / "quiet.mp4"
    reencode(good, out, preset="ultrafast", audio=False)
    return out


CORPUS: dict[str, Case] = {
    "cut short, index first": Case(
        lambda good, folder: truncated(good, folder / "cut.mp4", 0.4),
        r"the file is truncated: \d+ KB of its \d+ KB of media data are missing; "
        r"1\.\d+ s of video where 4 s were asked",
        r"refuses: segment 1 \(cut\.mp4\): the file is truncated",
    ),
    "cut short, index last": Case(
        lambda good, folder: truncated(remux(good, folder / "last.mp4", faststart=False), folder / "cut.mp4", 0.6),
        r"cannot be read: the file ends \d+ KB into its \d+ KB of media data, before its index \(moov box\)",
        r"refuses: segment 1 \(cut\.mp4\) cannot be read: the file ends",
    ),
    "header overwritten": Case(
        lambda good, folder: overwritten(good, folder / "header.mp4", 0, 64),
        r"cannot be read: it is unknown data, not an MP4 video",
        r"refuses: segment 1 \(header\.mp4\) cannot be read: it is unknown data",
    ),
    "first frame overwritten": Case(
        lambda good, folder: overwritten(good, folder / "early.mp4", inside_packet(good, 0), 32),
        r"the video is corrupt at 0 s \(frame 1 decodes with errors\)",
        "copies",
    ),
    "a frame mid-file overwritten": Case(
        lambda good, folder: overwritten(good, folder / "mid.mp4", inside_packet(good, 2.5), 32),
        r"the video is corrupt at 2\.5 s \(frame 61",
        "copies",
    ),
    "audio mid-file overwritten": Case(
        lambda good, folder: overwritten(good, folder / "mid-audio.mp4", inside_packet(good, 2, "audio", 16), 16),
        r"the audio is corrupt at 2(\.\d+)? s",
        "copies",
    ),
    "empty": Case(
        lambda good, folder: truncated(good, folder / "empty.mp4", 0),
        r"cannot be read: the file is empty \(0 bytes\)",
        r"refuses: segment 1 \(empty\.mp4\) cannot be read: the file is empty",
    ),
    "a PNG": Case(
        make_png,
        r"cannot be read: it is a PNG image, not an MP4 video",
        r"refuses: segment 1 \(picture\.mp4\) cannot be read: it is a PNG image",
    ),
    "text": Case(
        make_text,
        r"cannot be read: it is text \('\{\"error\": \{\"code\": 503, ?'…\), not an MP4 video",
        r"refuses: segment 1 \(error\.mp4\) cannot be read: it is text",
    ),
    "30 fps among 24": Case(
        lambda good, folder: reencode(good, folder / "thirty.mp4", preset="ultrafast", fps=30) or folder / "thirty.mp4",
        r"30 fps where 24 were asked",
        r"refuses: segment 1 \(thirty\.mp4\) is 30 fps, but segment 0 \(seg-0\.mp4\) is 24 fps",
    ),
    "44.1 kHz among 48": Case(
        lambda good, folder: with_audio(good, folder / "44k.mp4", rate=44_100, layout="mono"), None, "resamples"
    ),
    "stereo among mono": Case(
        lambda good, folder: with_audio(good, folder / "stereo.mp4", rate=48_000, layout="stereo"), None, "resamples"
    ),
    "no audio among audio": Case(make_quiet, None, "silence", replace(SEGMENT, audio=False)),
}


@pytest.fixture(scope="session")
def corpus(segments: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case's file, made once from segment 1."""
    made = {}
    for i, (name, case) in enumerate(CORPUS.items()):
        folder = tmp_path_factory.mktemp(f"corpus-{i}")
        made[name] = case.make(segments[1], folder)
    return made


# --- the checker ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, case in CORPUS.items() if case.rejected])
def test_the_checker_rejects_each_broken_file_naming_its_key_and_the_problem(
    name: str, corpus: dict[str, Path]
) -> None:
    case = CORPUS[name]
    assert case.rejected is not None
    with pytest.raises(BrokenMedia) as caught:
        check_file(corpus[name], case.expected, name="jobs/j/segments/1.mp4")

    message = str(caught.value)
    assert message.startswith("jobs/j/segments/1.mp4: ")
    assert re.search(case.rejected, message), message
    assert not re.search(RAW, message), f"raw FFmpeg words or a tuple in {message!r}"


@pytest.mark.parametrize("name", [name for name, case in CORPUS.items() if not case.rejected])
def test_the_checker_accepts_the_files_the_stitcher_can_heal(name: str, corpus: dict[str, Path]) -> None:
    assert media_problems(corpus[name], CORPUS[name].expected) == []


def test_a_segment_without_audio_is_rejected_when_audio_was_asked(corpus: dict[str, Path]) -> None:
    assert media_problems(corpus["no audio among audio"], SEGMENT) == ["no audio stream"]


def test_the_checker_accepts_good_segments_from_other_encoders(segments: list[Path], tmp_path: Path) -> None:
    """No false alarms: the renderer's file, a High-profile B-frame re-encode, a Veo-like grainy
    5 Mbit/s file with 48 kHz stereo audio; with audio not asked, the audio is not required."""
    bframes = tmp_path / "bframes.mp4"
    reencode(segments[0], bframes, preset="veryfast")
    grainy = veo_like(segments[0], tmp_path / "veo-like.mp4", bitrate=1_000_000)

    for path in (segments[0], bframes, grainy):
        assert media_problems(path, SEGMENT) == [], path.name
    assert media_problems(segments[0], replace(SEGMENT, audio=False)) == []


@pytest.mark.parametrize(
    ("expected", "words"),
    [
        (replace(SEGMENT, seconds=8), r"^4 s of video where 8 s were asked; 4(\.01)? s of audio where 8 s were asked$"),
        (replace(SEGMENT, width=1280, height=720), r"^320x180 where 1280x720 was asked$"),
        (replace(SEGMENT, fps=30), r"^24 fps where 30 were asked$"),
    ],
)
def test_a_good_file_that_is_not_what_was_asked_is_rejected(
    segments: list[Path], expected: MediaExpectation, words: str
) -> None:
    [problem] = ["; ".join(media_problems(segments[0], expected))]
    assert re.search(words, problem), problem


def test_without_video_decoding_the_checker_still_sees_truncation_but_not_damage_inside(
    corpus: dict[str, Path],
) -> None:
    """The cheap path (decode_video=False): demux everything and decode the audio."""

    def cheap(name: str) -> list[str]:
        return media_problems(corpus[name], SEGMENT, decode_video=False)

    assert cheap("a frame mid-file overwritten") == []
    assert "the file is truncated" in cheap("cut short, index first")[0]
    assert cheap("audio mid-file overwritten")[0].startswith("the audio is corrupt")


def test_the_checker_reads_through_the_blob_store(
    segments: list[Path], corpus: dict[str, Path], tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.upload("jobs/j/segments/0.mp4", segments[0])
    blobs.upload("jobs/j/segments/1.mp4", corpus["cut short, index first"])
    checker = PyavMediaChecker(blobs)

    checker.check("jobs/j/segments/0.mp4", SEGMENT)
    with pytest.raises(BrokenMedia, match=r"^jobs/j/segments/1\.mp4: the file is truncated"):
        checker.check("jobs/j/segments/1.mp4", SEGMENT)
    with pytest.raises(BrokenMedia, match=r"^jobs/j/segments/2\.mp4: the file is missing"):
        checker.check("jobs/j/segments/2.mp4", SEGMENT)


# --- the whole way: check each segment, then stitch ----------------------------------------------


def check_then_stitch(inputs: list[Path], expected: list[MediaExpectation], out: Path) -> str:
    """What the workflow does with three segments, as one word: rejected, refused or stitched."""
    for path, want in zip(inputs, expected, strict=True):
        if media_problems(path, want):
            return "rejected"
    try:
        concat_mp4(inputs, out)
    except PermanentError:
        return "refused"
    return "stitched"


@pytest.mark.parametrize("name", CORPUS)
def test_no_case_becomes_a_video_that_fails_a_full_decode_or_has_the_wrong_length(
    name: str, segments: list[Path], corpus: dict[str, Path], tmp_path: Path
) -> None:
    case = CORPUS[name]
    inputs = [segments[0], corpus[name], segments[2]]
    out = tmp_path / "video.mp4"

    outcome = check_then_stitch(inputs, [SEGMENT, case.expected, SEGMENT], out)

    if case.rejected:
        assert outcome == "rejected" and not out.exists()
        return
    assert outcome == "stitched"
    info = probe(out)
    assert (info.frames, info.corrupt_frames) == (3 * 96, 0)
    assert info.duration == pytest.approx(12, abs=1 / 24)
    assert (info.sample_rate, info.channels) == (RATE, 1)
    assert abs(info.audio_samples - 12 * RATE) <= HALF_AAC_FRAME
    onsets = audio_onsets(out)
    expected_onsets = [0, 8] if case.stitcher == "silence" else [0, 4, 8]
    assert len(onsets) == len(expected_onsets)
    assert all(abs(t - at) <= HALF_AAC_FRAME / RATE + 0.002 for t, at in zip(onsets, expected_onsets, strict=True))
    assert media_problems(out, MediaExpectation(seconds=12, width=320, height=180)) == []


@pytest.mark.parametrize("name", [name for name, case in CORPUS.items() if case.stitcher.startswith("refuses")])
def test_the_stitcher_alone_refuses_what_it_can_see_naming_the_segment(
    name: str, segments: list[Path], corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Without the checker in front: files it cannot read, cut short, or of another frame rate."""
    out = tmp_path / "video.mp4"
    with pytest.raises(PermanentError) as caught:
        concat_mp4([segments[0], corpus[name], segments[2]], out)

    assert re.search(CORPUS[name].stitcher.removeprefix("refuses: "), str(caught.value)), str(caught.value)
    assert not re.search(RAW, str(caught.value))
    assert not out.exists()


def test_damage_inside_the_media_data_passes_through_the_stitcher_and_only_a_full_decode_sees_it(
    segments: list[Path], corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Why segments are checked with a full decode before they are stitched: the stitcher copies
    packets and cannot see damage inside them; the stitched video carries it, and of the checks
    on the final video only the full decode finds it."""
    out = tmp_path / "video.mp4"
    concat_mp4([segments[0], corpus["a frame mid-file overwritten"], segments[2]], out)

    final = MediaExpectation(seconds=12, width=320, height=180)
    assert media_problems(out, final, decode_video=False) == []
    [problem] = media_problems(out, final)
    assert re.match(r"the video is corrupt at 6\.5 s \(frame 157", problem), problem
