"""The embedded VideoModel: renders a real H.264/AAC MP4 from the prompt, offline and fast.

Each segment shows the prompt (and a "scene k" label) over a panning, prompt-coloured scene with a
moving disc; its audio is a prompt-pitched tone that opens with a short loud burst, so a test can
find every segment's start in a stitched file. Everything is derived from a hash of (prompt, seed),
so the same request renders the same frames. Given a first-frame image, frame 0 is that image and
the scene crossfades in from it over the first second while it pans away (the daisy chain).

Speed comes from drawing once: the background, text panels and disc are built in RGB with
numpy/Pillow, converted to YUV 4:2:0 once, and each frame is only slicing and copying planes.
"""

from __future__ import annotations

import colorsys
import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import PermanentError
from ..ports import BlobStore, Operation, SegmentSpec
from ..processes import scratch_dir
from ..request import FRAME_SIZES

FPS = 24
SAMPLE_RATE = 48_000
KEYINT = 48  # a keyframe every 2 s: cheap seeking for the last-frame extractor
CRF = 21
FADE_FRAMES = FPS  # the chained first frame fades out over one second
BURST_SECONDS = 0.04
BURST_AMPLITUDE = 0.8
TONE_AMPLITUDE = 0.1
DEFAULT_SEED = 0

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y (h, w), U and V (h/2, w/2), uint8


def render_preview(
    out: Path,
    *,
    prompt: str,
    seconds: int,
    width: int,
    height: int,
    generate_audio: bool,
    seed: int | None,
    first_frame: Path | None = None,
    label: str | None = None,
) -> None:
    """Write a ``seconds``-long, ``width``×``height``, 24 fps MP4 for ``prompt`` to ``out``."""
    if seconds <= 0 or width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"bad render size {width}x{height}, {seconds}s")
    look = _Look.from_prompt(prompt, seed)
    scene = _Scene(look, prompt, label, width, height)
    first = _yuv(_load_rgb(first_frame, width, height)) if first_frame is not None else None

    with av.open(str(out), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {
            "preset": "ultrafast",
            "crf": str(CRF),
            "bf": "0",
            "g": str(KEYINT),
            "keyint_min": str(KEYINT),
            "sc_threshold": "0",  # keyframes exactly every KEYINT frames, whatever the content
        }
        # x264's output depends on its thread count: fix it, so every machine renders the same file.
        video.codec_context.thread_count = 4
        audio = None
        if generate_audio:
            audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
            audio.codec_context.options = {"aac_coder": "fast"}  # the default coder is ~3x slower here

        frames = seconds * FPS
        for i in range(frames):
            buf = scene.frame(i)
            if first is not None and i < FADE_FRAMES:
                _crossfade(buf, first, i, look.pan, width, height)
            frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))

        if audio is not None:
            sound = av.AudioFrame.from_ndarray(_audio(look, seconds)[None, :], format="fltp", layout="mono")
            sound.sample_rate, sound.pts = SAMPLE_RATE, 0
            container.mux(audio.encode(sound))  # PyAV cuts it into the encoder's 1024-sample frames
            container.mux(audio.encode(None))


@dataclass(frozen=True)
class _Look:
    """Everything about a segment's picture and sound that the prompt (and seed) decides."""

    colors: np.ndarray  # (3, 3) uint8 RGB: top, bottom, accent
    stripe_period: int  # pixels, even
    pan: int  # pixels per frame, even, may be negative
    orbit: tuple[float, float, float]  # disc path: x and y angular speeds, phase
    pitch: float  # Hz of the background tone

    @classmethod
    def from_prompt(cls, prompt: str, seed: int | None) -> _Look:
        seed = DEFAULT_SEED if seed is None else seed
        digest = hashlib.sha256(f"{seed}\x00{prompt}".encode("utf-8", "surrogatepass")).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:16], "big"))
        hue = rng.uniform(0, 1)
        dark_top = rng.uniform() < 0.5
        top = _hsv(hue, 0.8, 0.25 if dark_top else 0.95)
        bottom = _hsv(hue + rng.uniform(0.15, 0.45), 0.7, 0.95 if dark_top else 0.3)
        accent = _hsv(hue + 0.5, 0.9, 1.0)
        speed = int(rng.integers(2, 6)) * 2
        return cls(
            colors=np.array([top, bottom, accent], dtype=np.uint8),
            stripe_period=int(rng.integers(80, 200)) * 2,
            pan=speed if rng.uniform() < 0.5 else -speed,
            orbit=(float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.4, 1.1)), float(rng.uniform(0, 2 * np.pi))),
            pitch=float(220 * 2 ** rng.uniform(0, 1.5)),
        )


class _Scene:
    """Precomputed YUV layers; ``frame(i)`` composes frame i from slices of them."""

    def __init__(self, look: _Look, prompt: str, label: str | None, width: int, height: int) -> None:
        self.look, self.w, self.h = look, width, height
        # The background is one stripe period wider than the frame and periodic in x, so panning
        # is a slice at offset (i * pan) mod period.
        period = look.stripe_period
        wide = width + period
        y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        x = np.arange(wide, dtype=np.float32)[None, :, None]
        top, bottom, accent = (c.astype(np.float32) for c in look.colors)
        base = top * (1 - y) + bottom * y
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * x / period)
        rgb = base * (1 - 0.35 * stripes) + accent * (0.35 * stripes)
        self.background = _yuv(np.clip(rgb, 0, 255).astype(np.uint8))

        size = (min(width, height) // 6) & ~1
        yy, xx = np.mgrid[0:size, 0:size]
        inside = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 2) ** 2
        disc = np.zeros((size, size, 3), np.uint8)
        disc[inside] = 255 - look.colors[0]  # contrasts with the top colour
        disc[~inside] = look.colors[2]
        self.disc, self.disc_mask = _yuv(disc), (inside, inside[::2, ::2])
        self.disc_size = size

        font_size = max(12, min(width, height) // 22)
        self.panels: list[tuple[int, int, Planes]] = []
        text = _text_panel(prompt, width - 2 * (width // 20), font_size, max_lines=5)
        th, tw = text.shape[:2]
        self.panels.append((((width - tw) // 2) & ~1, (height - th - height // 20) & ~1, _yuv(text)))
        if label:
            tag = _text_panel(label, width // 2, font_size, max_lines=1)
            self.panels.append(((width // 40) & ~1, (height // 30) & ~1, _yuv(tag)))

    def frame(self, i: int) -> np.ndarray:
        """Frame i as one (h*3/2, w) yuv420p buffer, the layout VideoFrame.from_ndarray wants."""
        w, h = self.w, self.h
        buf = np.empty((h * 3 // 2, w), np.uint8)
        planes = _planes(buf, w, h)
        offset = (i * self.look.pan) % self.look.stripe_period
        for plane, src, scale in zip(planes, self.background, (1, 2, 2), strict=True):
            o, cw = offset // scale, w // scale
            plane[:] = src[:, o : o + cw]

        fx, fy, phase = self.look.orbit
        t = i / FPS
        s = self.disc_size
        x = int((w - s) * (0.5 + 0.45 * np.sin(fx * 2 * np.pi * t + phase))) & ~1
        y = int((h - s) * (0.5 + 0.45 * np.sin(fy * 2 * np.pi * t))) & ~1
        masks = (self.disc_mask[0], self.disc_mask[1], self.disc_mask[1])
        for plane, src, mask, scale in zip(planes, self.disc, masks, (1, 2, 2), strict=True):
            region = plane[y // scale : (y + s) // scale, x // scale : (x + s) // scale]
            np.copyto(region, src, where=mask)

        for px, py, panel in self.panels:
            for plane, src, scale in zip(planes, panel, (1, 2, 2), strict=True):
                ph, pw = src.shape
                plane[py // scale : py // scale + ph, px // scale : px // scale + pw] = src
        return buf


def _crossfade(buf: np.ndarray, first: Planes, i: int, pan: int, w: int, h: int) -> None:
    """Blend the chained first frame over frame i: all of it at i=0, fading out while it pans."""
    alpha = 256 - (256 * i) // FADE_FRAMES  # integer weights: frame 0 is the image, bit for bit
    shift = -i * pan  # drift the image with the background, so it moves away from frame 0
    for plane, src, scale in zip(_planes(buf, w, h), first, (1, 2, 2), strict=True):
        moved = np.roll(src, shift // scale, axis=1) if shift else src
        mix = moved.astype(np.uint16) * alpha + plane.astype(np.uint16) * (256 - alpha)
        plane[:] = (mix >> 8).astype(np.uint8)


def _audio(look: _Look, seconds: int) -> np.ndarray:
    """A quiet tone at the prompt's pitch, opened by a loud burst an octave up."""
    n = seconds * SAMPLE_RATE
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    wobble = 1 + 0.3 * np.sin(2 * np.pi * 0.5 * t)  # slow tremolo, stays well below the burst
    samples = TONE_AMPLITUDE * wobble * np.sin(2 * np.pi * look.pitch * t)
    burst = int(BURST_SECONDS * SAMPLE_RATE)
    samples[:burst] = BURST_AMPLITUDE * np.sin(2 * np.pi * 2 * look.pitch * t[:burst])
    return samples.astype(np.float32)


def _text_panel(text: str, max_width: int, font_size: int, max_lines: int) -> np.ndarray:
    """White text on a dark box, wrapped to ``max_width`` pixels; an RGB array with even sides."""
    font = ImageFont.load_default(size=font_size)
    lines = _wrap(" ".join(text.split()), font, max_width - font_size, max_lines)
    line_height = int(font_size * 1.25)
    width = max(int(font.getlength(line)) for line in lines) + font_size
    height = line_height * len(lines) + font_size // 2
    image = Image.new("RGB", ((width + 1) & ~1, (height + 1) & ~1), (16, 16, 16))
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((font_size // 2, font_size // 4 + n * line_height), line, font=font, fill=(240, 240, 240))
    return np.asarray(image)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by rendered width; words wider than a line are cut; overflow ends in an ellipsis."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        while len(lines) <= max_lines:
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= max_width:
                line = candidate
                break
            if line:  # start a new line with the word
                lines.append(line)
                line = ""
                continue
            cut = _fitting_prefix(word, font, max_width)  # the word alone is too wide: cut it
            lines.append(word[:cut])
            word = word[cut:]
        if len(lines) > max_lines:
            break
    lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def _fitting_prefix(word: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int) -> int:
    """The length of the longest prefix of ``word`` that fits in ``max_width`` (at least 1)."""
    lo, hi = 1, len(word)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(word[:mid]) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _load_rgb(path: Path, width: int, height: int) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(image)


def _yuv(rgb: np.ndarray) -> Planes:
    """RGB (even sides) to yuv420p planes with FFmpeg's own converter, so colours match decoding."""
    h, w = rgb.shape[:2]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
    y, u, v = _planes(frame.to_ndarray(), w, h)
    return y.copy(), u.copy(), v.copy()


def _planes(buf: np.ndarray, w: int, h: int) -> Planes:
    """Views of the Y, U, V planes inside one (h*3/2, w) yuv420p buffer."""
    flat, n, c = buf.reshape(-1), w * h, (w // 2) * (h // 2)
    return flat[:n].reshape(h, w), flat[n : n + c].reshape(h // 2, w // 2), flat[n + c :].reshape(h // 2, w // 2)


_PREFIX = "preview/"


class PreviewVideoModel:
    """A VideoModel that renders locally and synchronously: ``start`` returns a finished operation."""

    earliest_done_seconds = 0.0  # done when start returns: polled at once

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def start(self, spec: SegmentSpec) -> str:
        size = FRAME_SIZES.get((spec.aspect_ratio, spec.resolution))
        if size is None:
            raise PermanentError(f"no preview size for {spec.aspect_ratio} {spec.resolution}")
        width, height = size
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(scratch_dir("preview"))
            first = stack.enter_context(self.blobs.local_path(spec.first_frame_key)) if spec.first_frame_key else None
            out = tmp / "segment.mp4"
            try:
                render_preview(
                    out,
                    prompt=spec.prompt,
                    seconds=spec.seconds,
                    width=width,
                    height=height,
                    generate_audio=spec.generate_audio,
                    seed=DEFAULT_SEED if spec.seed is None else spec.seed,
                    first_frame=first,
                    label=f"scene {spec.index + 1}",
                )
            except (av.error.FFmpegError, OSError) as exc:
                raise PermanentError(f"preview render of segment {spec.index} failed: {exc}") from exc
            self.blobs.upload(spec.output_key, out)
        return _PREFIX + spec.output_key

    def poll(self, operation: str) -> Operation:
        if not operation.startswith(_PREFIX):
            raise PermanentError(f"not a preview operation: {operation!r}")
        return Operation(operation, done=True, key=operation.removeprefix(_PREFIX))
