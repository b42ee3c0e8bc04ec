"""Stream-copy concatenation: every frame copied, one continuous timeline, audio in sync by sample count."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
from pytest_mock import MockerFixture

from devtools.media import (
    audio_onsets,
    decoded_audio,
    frames,
    probe,
    reencode,
    top_level_boxes,
    veo_like,
    video_packets,
    video_pts,
    with_audio,
)
from longform.adapters import pyav_stitcher
from longform.adapters.local_blob_store import LocalBlobStore
from longform.adapters.pyav_stitcher import PyavStitcher, concat_mp4
from longform.errors import PermanentError
from longform.ports import StitchSpec

pytestmark = pytest.mark.slow

Render = Callable[..., Path]
RATE = 48_000
HALF_AAC_FRAME = 512


@pytest.fixture(scope="session")
def six_segments(render: Render) -> list[Path]:
    return [render(f"seg-{i}", prompt=f"scene number {i}", seconds=4, label=f"scene {i + 1}") for i in range(6)]


@pytest.fixture(scope="session")
def stitched(six_segments: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stitched") / "six.mp4"
    concat_mp4(six_segments, out)
    return out


def test_frame_count_is_the_sum_of_the_inputs(stitched: Path, six_segments: list[Path]) -> None:
    info = probe(stitched)

    assert info.frames == sum(probe(p).frames for p in six_segments) == 6 * 4 * 24
    assert info.fps == 24
    assert info.duration == pytest.approx(24, abs=0.02)


def test_video_is_copied_not_reencoded(stitched: Path, six_segments: list[Path]) -> None:
    assert video_packets(stitched) == [p for seg in six_segments for p in video_packets(seg)]
    with av.open(str(stitched)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "avc1"


def test_timestamps_are_continuous(stitched: Path) -> None:
    steps = np.diff(video_pts(stitched))

    assert (steps > 0).all()
    assert len(set(steps.tolist())) == 1  # evenly spaced: no gap or overlap at the joins


def test_audio_stays_in_sync_at_every_join(stitched: Path) -> None:
    onsets = audio_onsets(stitched)

    assert len(onsets) == 6
    for i, onset in enumerate(onsets):
        assert abs(onset - 4 * i) <= 0.015, f"segment {i} audio starts {1000 * (onset - 4 * i):+.1f} ms off"
    assert abs(probe(stitched).audio_samples - 24 * RATE) <= HALF_AAC_FRAME


def test_copying_every_audio_packet_would_drift(
    six_segments: list[Path], tmp_path: Path, mocker: MockerFixture
) -> None:
    """The trap the joins avoid, and proof that the sync test can see it: keep every packet
    (priming and padding included) and each join adds about 32 ms of delay."""

    def keep_everything(self: pyav_stitcher._AudioTrack, at: object) -> None:
        while self.pending:
            self._write(self.pending.popleft())

    mocker.patch.object(pyav_stitcher._AudioTrack, "join", keep_everything)
    out = tmp_path / "naive.mp4"
    concat_mp4(six_segments, out)

    drift = [onset - 4 * i for i, onset in enumerate(audio_onsets(out))]
    assert drift[-1] > 0.1


def test_segments_without_audio_are_filled_with_silence(render: Render, tmp_path: Path) -> None:
    inputs = [
        render("quiet-0", prompt="no sound", seconds=4, generate_audio=False),
        render("seg-1", prompt="scene number 1", seconds=4, label="scene 2"),
        render("quiet-2", prompt="still no sound", seconds=4, generate_audio=False),
        render("seg-3", prompt="scene number 3", seconds=4, label="scene 4"),
    ]
    out = tmp_path / "mixed.mp4"

    concat_mp4(inputs, out)

    info = probe(out)
    assert info.frames == 4 * 4 * 24
    assert info.has_audio
    assert abs(info.audio_samples - 16 * RATE) <= HALF_AAC_FRAME
    onsets = audio_onsets(out)
    assert len(onsets) == 2
    assert abs(onsets[0] - 4) <= 0.015 and abs(onsets[1] - 12) <= 0.015
    samples, _ = decoded_audio(out)
    for start in (0, 8):  # the spans of the inputs without audio are silent (away from the joins)
        span = samples[start * RATE + 2048 : (start + 4) * RATE - 2048]
        assert np.abs(span).max() < 0.01


def test_inputs_all_without_audio_give_a_video_without_audio(render: Render, tmp_path: Path) -> None:
    inputs = [
        render("quiet-0", prompt="no sound", seconds=4, generate_audio=False),
        render("quiet-2", prompt="still no sound", seconds=4, generate_audio=False),
    ]
    out = tmp_path / "quiet.mp4"

    concat_mp4(inputs, out)

    info = probe(out)
    assert not info.has_audio
    assert info.frames == 8 * 24


def test_inputs_with_b_frames_stitch_into_a_continuous_video(six_segments: list[Path], tmp_path: Path) -> None:
    inputs = []
    for i, segment in enumerate(six_segments[:3]):
        inputs.append(tmp_path / f"b{i}.mp4")
        reencode(segment, inputs[-1], preset="veryfast")
    with av.open(str(inputs[0])) as container:  # the premise: decode order differs from display order
        first = [p for p in container.demux(video=0) if p.size][:4]
        assert first[0].dts < first[0].pts
    out = tmp_path / "bframes.mp4"

    concat_mp4(inputs, out)

    assert probe(out).frames == 3 * 96
    steps = np.diff(video_pts(out))
    assert (steps > 0).all() and len(set(steps.tolist())) == 1
    assert [abs(t - 4 * i) <= 0.015 for i, t in enumerate(audio_onsets(out))] == [True] * 3


def test_inputs_with_different_encoder_settings_each_decode_as_themselves(
    six_segments: list[Path], tmp_path: Path
) -> None:
    """ultrafast (CAVLC, no B-frames) next to veryfast (CABAC, B-frames): different parameter sets
    in one track. Every output frame must equal the frame of the input it came from."""
    reencoded = tmp_path / "veryfast.mp4"
    reencode(six_segments[1], reencoded, preset="veryfast")
    inputs = [six_segments[0], reencoded, six_segments[2]]
    out = tmp_path / "mixed-encoders.mp4"

    concat_mp4(inputs, out)

    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "avc3"  # parameter sets in band
    expected = [f for p in inputs for f in frames(p)]
    actual = frames(out)
    assert len(actual) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(actual, expected, strict=True))


def test_inputs_of_different_sizes_are_refused_naming_the_input(render: Render, tmp_path: Path) -> None:
    big = render("big", prompt="bigger", seconds=1, width=640, height=360)
    small = render("seg-small", prompt="small", seconds=1)

    with pytest.raises(PermanentError, match=r"big\.mp4"):
        concat_mp4([small, big], tmp_path / "out.mp4")


def test_output_is_faststart(stitched: Path) -> None:
    boxes = top_level_boxes(stitched)

    assert boxes.index("moov") < boxes.index("mdat")


def test_a_single_input_comes_out_whole(six_segments: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "one.mp4"

    concat_mp4(six_segments[:1], out)

    assert video_packets(out) == video_packets(six_segments[0])
    assert abs(probe(out).audio_samples - 4 * RATE) <= HALF_AAC_FRAME


def test_stitcher_reads_and_writes_through_the_blob_store(six_segments: list[Path], tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    keys = [f"jobs/j/segments/{i}.mp4" for i in range(3)]
    for key, segment in zip(keys, six_segments, strict=False):
        blobs.upload(key, segment)
    stitcher = PyavStitcher(blobs)

    spec = StitchSpec("j", "u", "j", tuple(keys), "jobs/j/final/video.mp4", 320, 180, 4, audio=True)
    job = stitcher.poll(stitcher.start(spec))

    assert job.done and job.key == "jobs/j/final/video.mp4"
    assert probe(blobs.path(job.key)).frames == 3 * 96


def test_stitcher_fails_permanently_on_a_broken_segment(six_segments: list[Path], tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.upload("jobs/j/segments/0.mp4", six_segments[0])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    blobs.upload("jobs/j/segments/1.mp4", junk)

    with pytest.raises(PermanentError, match=r"1\.mp4"):
        keys = ("jobs/j/segments/0.mp4", "jobs/j/segments/1.mp4")
        PyavStitcher(blobs).start(StitchSpec("j", "u", "j", keys, "jobs/j/final/video.mp4", 320, 180, 4, audio=True))
    assert not blobs.exists("jobs/j/final/video.mp4")


# --- audio of another format, other frame rates, temporary folders ---------------------------------


@pytest.fixture(scope="session")
def other_audio(six_segments: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int, str], Path]:
    """``other_audio(i, rate, layout)``: segment i with its audio re-encoded at ``rate`` and ``layout``."""
    folder = tmp_path_factory.mktemp("other-audio")

    def make(i: int, rate: int, layout: str) -> Path:
        out = folder / f"seg-{i}-{rate}-{layout}.mp4"
        return out if out.exists() else with_audio(six_segments[i], out, rate=rate, layout=layout)

    return make


def assert_in_sync(out: Path, scenes: int, rate: int) -> None:
    """Every scene's tone burst starts within half an AAC frame of its video (plus 2 ms for finding
    the onset), and the audio is as long as the video within half an AAC frame."""
    onsets = audio_onsets(out)
    assert len(onsets) == scenes
    for i, onset in enumerate(onsets):
        off = onset - 4 * i
        assert abs(off) <= HALF_AAC_FRAME / rate + 0.002, f"segment {i} audio starts {1000 * off:+.1f} ms off"
    info = probe(out)
    assert info.sample_rate == rate
    assert abs(info.audio_samples - scenes * 4 * rate) <= HALF_AAC_FRAME


@pytest.mark.parametrize(("rate", "layout"), [(44_100, "mono"), (48_000, "stereo"), (44_100, "stereo")])
def test_audio_of_another_rate_or_layout_is_resampled_and_stays_in_sync(
    six_segments: list[Path], other_audio: Callable[[int, int, str], Path], tmp_path: Path, rate: int, layout: str
) -> None:
    inputs = [six_segments[0], other_audio(1, rate, layout), six_segments[2], other_audio(3, rate, layout)]
    out = tmp_path / "mixed-audio.mp4"

    concat_mp4(inputs, out)

    info = probe(out)
    assert (info.sample_rate, info.channels) == (RATE, 1)  # the first input's format
    assert info.frames == 4 * 96 and info.corrupt_frames == 0
    assert video_packets(out) == [p for seg in inputs for p in video_packets(seg)]  # video still copied
    assert_in_sync(out, 4, RATE)


def test_the_track_takes_the_first_inputs_audio_format(
    six_segments: list[Path], other_audio: Callable[[int, int, str], Path], tmp_path: Path
) -> None:
    inputs = [other_audio(0, 44_100, "stereo"), six_segments[1], six_segments[2]]
    out = tmp_path / "first-44k.mp4"

    concat_mp4(inputs, out)

    assert (probe(out).sample_rate, probe(out).channels) == (44_100, 2)
    assert_in_sync(out, 3, 44_100)


def test_resampled_and_silent_inputs_mix(
    render: Render, six_segments: list[Path], other_audio: Callable[[int, int, str], Path], tmp_path: Path
) -> None:
    """A resampled input right after a silent one, and a silent one right after a resampled one."""
    quiet = render("quiet-0", prompt="no sound", seconds=4, generate_audio=False)
    inputs = [six_segments[0], quiet, other_audio(2, 44_100, "stereo"), quiet, six_segments[4]]
    out = tmp_path / "mixed.mp4"

    concat_mp4(inputs, out)

    onsets = audio_onsets(out)
    assert [round(t) for t in onsets] == [0, 8, 16]
    assert all(abs(t - round(t)) <= HALF_AAC_FRAME / RATE + 0.002 for t in onsets)
    assert abs(probe(out).audio_samples - 20 * RATE) <= HALF_AAC_FRAME


def test_inputs_at_another_frame_rate_are_refused_naming_their_position(
    six_segments: list[Path], tmp_path: Path
) -> None:
    thirty = tmp_path / "thirty.mp4"
    reencode(six_segments[1], thirty, preset="ultrafast", fps=30)
    out = tmp_path / "out.mp4"

    with pytest.raises(
        PermanentError, match=r"segment 2 \(thirty\.mp4\) is 30 fps, but segment 0 \(seg-0\.mp4\) is 24 fps"
    ):
        concat_mp4([six_segments[0], six_segments[2], thirty], out)
    assert not out.exists()


def test_inputs_of_another_size_are_refused_naming_their_position(render: Render, tmp_path: Path) -> None:
    big = render("big", prompt="bigger", seconds=1, width=640, height=360)
    small = render("seg-small", prompt="small", seconds=1)

    with pytest.raises(
        PermanentError, match=r"segment 1 \(big\.mp4\) is 640x360, but segment 0 \(seg-small\.mp4\) is 320x180"
    ):
        concat_mp4([small, big], tmp_path / "out.mp4")


def test_a_failed_stitch_leaves_no_output_and_no_temporary_folder(
    six_segments: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    blobs = LocalBlobStore(tmp_path / "blobs")
    thirty = tmp_path / "thirty.mp4"
    reencode(six_segments[1], thirty, preset="ultrafast", fps=30)
    blobs.upload("jobs/j/segments/0.mp4", six_segments[0])
    blobs.upload("jobs/j/segments/1.mp4", thirty)
    keys = ("jobs/j/segments/0.mp4", "jobs/j/segments/1.mp4")
    made: list[Path] = []
    real_concat = pyav_stitcher.concat_mp4
    monkeypatch.setattr(pyav_stitcher, "concat_mp4", lambda inputs, out: made.append(out) or real_concat(inputs, out))

    with pytest.raises(PermanentError, match=r"segment 1 \(1\.mp4\) is 30 fps"):
        PyavStitcher(blobs).start(StitchSpec("j", "u", "j", keys, "jobs/j/final/video.mp4", 320, 180, 4, audio=True))

    assert made and made[0].parent.parent == scratch  # the stitch did work in a folder there…
    assert list(scratch.iterdir()) == []  # …which is gone
    assert not blobs.exists("jobs/j/final/video.mp4")


def test_an_error_while_writing_removes_the_partial_output(
    six_segments: list[Path], tmp_path: Path, mocker: MockerFixture
) -> None:
    mocker.patch.object(pyav_stitcher._VideoTrack, "write", side_effect=OSError(28, "No space left on device"))
    out = tmp_path / "partial.mp4"

    with pytest.raises(OSError, match="No space left"):
        concat_mp4(six_segments[:2], out)
    assert not out.exists()


# --- opened once, nothing decoded: the same packets as the stitch that decoded each first picture ---

VEO_SECONDS = 2


@pytest.fixture(scope="session")
def veo_like_segments(render: Render, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three Veo-like segments: 1280x720 with film grain, H.264 High with B-frames at about
    4 Mbit/s (big I-frames: FFmpeg decodes one to open a file unless told not to), AAC 48 kHz stereo."""
    folder = tmp_path_factory.mktemp("veo-like")
    return [
        veo_like(
            render(f"hd-{i}", prompt=f"scene number {i}", seconds=VEO_SECONDS, width=1280, height=720, label=f"s{i}"),
            folder / f"veo-{i}.mp4",
            bitrate=4_000_000,
        )
        for i in range(3)
    ]


def packet_table(path: Path) -> list[tuple[str, int | None, int | None, int, bool, int]]:
    """Every packet of ``path`` in file order: its stream, pts, dts, size, keyframe flag and a
    checksum of its bytes."""
    with av.open(str(path)) as container:
        return [
            (p.stream.type, p.pts, p.dts, p.size, p.is_keyframe, zlib.crc32(bytes(p)))
            for p in container.demux()
            if p.size
        ]


@contextmanager
def recording_opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str | None]]]:
    """Each file opened for reading meanwhile: its name, and the pixel format FFmpeg knew right
    after opening it (None: it decoded no picture to find out)."""
    opened: list[tuple[str, str | None]] = []
    real_open = av.open

    def open_and_look(file: str, mode: str = "r", **options: object) -> object:
        container = real_open(file, mode, **options)  # type: ignore[call-overload]
        if mode == "r":
            pixels = container.streams.video[0].codec_context.format
            opened.append((Path(file).name, pixels.name if pixels else None))
        return container

    with monkeypatch.context() as patch:
        patch.setattr(av, "open", open_and_look)
        yield opened


def stitch_as_before(inputs: list[Path], out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stitch as it was before it opened each input once without decoding: every input opened
    as then (when its first packet is video, as in a Veo file, FFmpeg decodes that picture to learn
    its pixel format), and its first timestamps read by demuxing its first video packet, from a
    second opening."""
    with monkeypatch.context() as patch:
        patch.setattr(pyav_stitcher, "_OPEN_OPTIONS", {"probesize": "32", "analyzeduration": "0"})
        patch.setattr(pyav_stitcher, "_first_timestamps", lambda stream: None)
        concat_mp4(inputs, out)


@pytest.fixture
def input_sets(
    request: pytest.FixtureRequest,
    six_segments: list[Path],
    other_audio: Callable[[int, int, str], Path],
    render: Render,
) -> Callable[[str], list[Path]]:
    """``input_sets(name)``: the inputs of one parametrized case, made only when it runs."""

    def make(name: str) -> list[Path]:
        if name.startswith("veo-like"):
            veo: list[Path] = request.getfixturevalue("veo_like_segments")
            if name == "veo-like":
                return veo
            # B-frames next to none: each input's dts shift depends on its own and the largest delay
            plain = render("hd-1", prompt="scene number 1", seconds=VEO_SECONDS, width=1280, height=720, label="s1")
            return [plain, veo[0], plain, veo[2]]
        if name == "preview":
            return six_segments
        quiet = render("quiet-0", prompt="no sound", seconds=4, generate_audio=False)
        return [six_segments[0], quiet, other_audio(2, 44_100, "stereo"), six_segments[3]]  # silence, resampling

    return make


@pytest.mark.parametrize(
    "name", ["preview", "veo-like", "veo-like after one without B-frames", "preview with silence and resampled audio"]
)
def test_opening_each_input_once_without_decoding_copies_the_same_packets(
    name: str, input_sets: Callable[[str], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = input_sets(name)
    fast, before = tmp_path / "fast.mp4", tmp_path / "before.mp4"

    with recording_opens(monkeypatch) as opened:
        concat_mp4(inputs, fast)
    with recording_opens(monkeypatch) as opened_before:
        stitch_as_before(inputs, before, monkeypatch)

    assert opened == [(p.name, None) for p in inputs]  # once each, and no picture decoded
    assert len(opened_before) == 2 * len(inputs)  # the premise: the reference opened each twice…
    if name == "veo-like":  # …and decoded the first picture of each (a Veo file's first packet is video)
        assert {pixels for _, pixels in opened_before} == {"yuv420p"}
    assert packet_table(fast) == packet_table(before)


def test_veo_like_segments_with_b_frames_stay_in_sync_at_every_join(
    veo_like_segments: list[Path], tmp_path: Path
) -> None:
    inputs = veo_like_segments * 2  # six joins' worth from three encodes
    out = tmp_path / "veo-like.mp4"

    concat_mp4(inputs, out)

    info = probe(out)
    assert info.frames == len(inputs) * VEO_SECONDS * 24 and info.corrupt_frames == 0
    assert video_packets(out) == [p for seg in inputs for p in video_packets(seg)]
    steps = np.diff(video_pts(out))
    assert (steps > 0).all() and len(set(steps.tolist())) == 1
    onsets = audio_onsets(out)
    assert len(onsets) == len(inputs)
    for i, onset in enumerate(onsets):
        off = onset - VEO_SECONDS * i
        assert abs(off) <= HALF_AAC_FRAME / RATE + 0.002, f"segment {i} audio starts {1000 * off:+.1f} ms off"
    assert abs(info.audio_samples - len(inputs) * VEO_SECONDS * RATE) <= HALF_AAC_FRAME


# --- faststart in one pass: the index written in room reserved for it, not moved by a rewrite ---


def stitch_passes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each pass of the stitch from now on: True when it reserved room for the index."""
    passes: list[bool] = []
    real = pyav_stitcher._concat

    def recorded(inputs: list[Path], out: Path, *, reserve: bool) -> None:
        passes.append(reserve)
        real(inputs, out, reserve=reserve)

    monkeypatch.setattr(pyav_stitcher, "_concat", recorded)
    return passes


@pytest.mark.parametrize("name", ["preview", "veo-like", "preview with silence and resampled audio"])
def test_the_index_is_written_in_room_reserved_before_the_media_data(
    name: str, input_sets: Callable[[str], list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = input_sets(name)
    reserved, rewritten = tmp_path / "reserved.mp4", tmp_path / "rewritten.mp4"
    passes = stitch_passes(monkeypatch)

    concat_mp4(inputs, reserved)
    with monkeypatch.context() as patch:  # FFmpeg's faststart: the index written last, then moved
        patch.setattr(pyav_stitcher, "_index_room", lambda probes: None)
        concat_mp4(inputs, rewritten)

    assert passes == [True, True]  # one pass each: the room held the index
    assert top_level_boxes(reserved)[:3] == ["ftyp", "moov", "free"]  # the unused room is a free box
    assert top_level_boxes(reserved).index("moov") < top_level_boxes(reserved).index("mdat")
    assert packet_table(reserved) == packet_table(rewritten)
    assert probe(reserved) == probe(rewritten)
    spare = reserved.stat().st_size - rewritten.stat().st_size  # the room the index left unused
    assert 0 < spare <= pyav_stitcher._INDEX_BYTES_FIXED + 4_000 * probe(rewritten).duration  # bytes a second


def test_if_the_reserved_room_is_too_small_the_stitch_is_done_again_with_a_rewrite(
    six_segments: list[Path], stitched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "again.mp4"
    passes = stitch_passes(monkeypatch)
    monkeypatch.setattr(pyav_stitcher, "_index_room", lambda probes: 4096)  # far less than the index

    concat_mp4(six_segments, out)

    assert passes == [True, False]
    assert top_level_boxes(out).index("moov") < top_level_boxes(out).index("mdat")
    assert packet_table(out) == packet_table(stitched)
