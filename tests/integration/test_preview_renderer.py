"""The preview renderer writes real, deterministic H.264/AAC MP4s drawn from the prompt."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from devtools.media import audio_onsets, frame_at, frames, probe, psnr
from longform.adapters.local_blob_store import LocalBlobStore
from longform.adapters.preview_video_model import PreviewVideoModel, render_preview
from longform.adapters.pyav_frames import extract_last_frame
from longform.errors import PermanentError
from longform.ports import SegmentSpec
from longform.request import FRAME_SIZES

pytestmark = pytest.mark.slow

Render = Callable[..., Path]


@pytest.mark.parametrize(("aspect", "resolution"), sorted(FRAME_SIZES))
def test_renders_every_frame_size_at_24_fps(tmp_path: Path, aspect: str, resolution: str) -> None:
    width, height = FRAME_SIZES[(aspect, resolution)]
    seconds = 2 if resolution == "720p" else 1  # 1080p is slower to render and decode
    out = tmp_path / "segment.mp4"
    render_preview(
        out, prompt="a harbour at dusk", seconds=seconds, width=width, height=height, generate_audio=False, seed=1
    )

    info = probe(out)
    assert (info.width, info.height) == (width, height)
    assert info.frames == seconds * 24
    assert info.fps == 24
    assert info.duration == pytest.approx(seconds, abs=1e-3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_keyframes_come_at_least_every_two_seconds(render: Render) -> None:
    out = render("keyframes", prompt="keyframes", seconds=5)
    with av.open(str(out)) as container:
        keyframes = [i for i, p in enumerate(p for p in container.demux(video=0) if p.size) if p.is_keyframe]
    assert keyframes[0] == 0
    assert max(np.diff([*keyframes, 5 * 24])) <= 48


def test_audio_is_aac_48k_and_as_long_as_the_segment(render: Render) -> None:
    out = render("with-audio", prompt="waves on a beach", seconds=3)

    info = probe(out)
    assert info.has_audio and info.sample_rate == 48_000
    assert abs(info.audio_samples - 3 * 48_000) <= 1024  # at most one AAC frame of padding
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert audio_onsets(out) == [pytest.approx(0, abs=0.002)]  # one burst, at the very start


def test_no_audio_stream_without_generate_audio(render: Render) -> None:
    out = render("silent", prompt="waves on a beach", seconds=1, generate_audio=False)

    info = probe(out)
    assert not info.has_audio
    assert info.frames == 24


def test_same_prompt_and_seed_render_the_same_frames(tmp_path: Path) -> None:
    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for out in outs:
        render_preview(out, prompt="same", seconds=1, width=320, height=180, generate_audio=True, seed=3, label="x")

    first, second = frames(outs[0]), frames(outs[1])
    assert len(first) == len(second) == 24
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_different_prompts_look_clearly_different(render: Render) -> None:
    a = render("fox", prompt="a red fox in the snow", seconds=1)
    b = render("city", prompt="a neon city at night", seconds=1)

    assert psnr(frame_at(a, 0), frame_at(b, 0)) < 20
    assert psnr(frame_at(a, 23), frame_at(b, 23)) < 20


def test_the_seed_changes_the_picture(render: Render) -> None:
    a = render("seed-1", prompt="a red fox in the snow", seconds=1, seed=1)
    b = render("seed-2", prompt="a red fox in the snow", seconds=1, seed=2)

    assert psnr(frame_at(a, 0), frame_at(b, 0)) < 30


def test_frames_move(render: Render) -> None:
    out = render("fox", prompt="a red fox in the snow", seconds=1)

    assert psnr(frame_at(out, 0), frame_at(out, 12)) < 30


def test_first_frame_is_the_given_image_then_the_scene_moves_away(tmp_path: Path, render: Render) -> None:
    previous = render("previous", prompt="a lighthouse in a storm", seconds=2)
    png = tmp_path / "last.png"
    extract_last_frame(previous, png)
    image = np.asarray(Image.open(png).convert("RGB"))

    out = tmp_path / "chained.mp4"
    render_preview(
        out,
        prompt="calm sea at sunrise",
        seconds=2,
        width=320,
        height=180,
        generate_audio=True,
        seed=7,
        first_frame=png,
    )

    assert psnr(frame_at(out, 0), image) >= 35
    assert psnr(frame_at(out, 6), image) < psnr(frame_at(out, 0), image)
    assert psnr(frame_at(out, 47), image) < 25


def test_first_frame_of_another_size_is_resized(tmp_path: Path) -> None:
    png = tmp_path / "big.png"
    Image.new("RGB", (640, 480), (200, 30, 30)).save(png)

    out = tmp_path / "chained.mp4"
    render_preview(out, prompt="x", seconds=1, width=320, height=180, generate_audio=False, seed=1, first_frame=png)

    first = frame_at(out, 0)
    assert first.shape == (180, 320, 3)
    assert psnr(first, np.full_like(first, (200, 30, 30))) >= 30


@pytest.mark.parametrize(
    "prompt",
    [
        "日本語のプロンプト — émojis 🦊🌊🏳️‍🌈, right-to-left שלום, control\x00chars\ttabs\nnewlines",
        "word " * 400,  # 2000 characters: wrapped, cut off with an ellipsis
        "x" * 2000,  # one word far wider than the frame
    ],
)
def test_unicode_and_long_prompts_render(tmp_path: Path, prompt: str) -> None:
    out = tmp_path / "segment.mp4"
    render_preview(out, prompt=prompt, seconds=1, width=320, height=180, generate_audio=False, seed=None, label="⚑ 2")

    assert probe(out).frames == 24


def test_preview_model_renders_uploads_and_reports_done(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    model = PreviewVideoModel(blobs)
    spec = SegmentSpec(
        job_id="job-1",
        user_id="user-1",
        index=0,
        prompt="a red fox in the snow",
        seconds=4,
        aspect_ratio="16:9",
        resolution="720p",
        generate_audio=True,
        output_key="jobs/job-1/segments/0.mp4",
    )

    name = model.start(spec)
    operation = model.poll(name)

    assert operation.done and operation.key == spec.output_key
    info = probe(blobs.path(spec.output_key))
    assert (info.width, info.height, info.frames, info.has_audio) == (1280, 720, 96, True)


def chained_spec(**changes: object) -> SegmentSpec:
    """Segment 1 of job ``j``, asked to start from segment 0's last frame."""
    spec = SegmentSpec(
        job_id="j",
        user_id="u",
        index=1,
        prompt="calm sea",
        seconds=4,
        aspect_ratio="16:9",
        resolution="720p",
        generate_audio=False,
        output_key="jobs/j/segments/1.mp4",
        first_frame_key="jobs/j/frames/0.png",
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def test_preview_model_chains_from_the_first_frame_key(tmp_path: Path, render: Render) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    png = tmp_path / "last.png"
    extract_last_frame(render("previous", prompt="a lighthouse in a storm", seconds=2), png)
    blobs.upload("jobs/j/frames/0.png", png)
    spec = chained_spec(aspect_ratio="9:16")

    model = PreviewVideoModel(blobs)
    key = model.poll(model.start(spec)).key
    assert key is not None

    out = blobs.path(key)
    assert probe(out).has_audio is False
    resized = np.asarray(Image.open(png).convert("RGB").resize((720, 1280), Image.Resampling.BICUBIC))
    assert psnr(frame_at(out, 0), resized) >= 35


def test_preview_model_fails_permanently_without_its_first_frame(tmp_path: Path) -> None:
    spec = chained_spec()

    with pytest.raises(PermanentError):
        PreviewVideoModel(LocalBlobStore(tmp_path)).start(spec)


def test_preview_model_fails_permanently_on_an_unreadable_first_frame(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    bad = tmp_path / "not-a.png"
    bad.write_bytes(b"not an image")
    blobs.upload("jobs/j/frames/0.png", bad)
    spec = chained_spec()

    with pytest.raises(PermanentError) as caught:
        PreviewVideoModel(blobs).start(spec)
    assert caught.value.__cause__ is not None
