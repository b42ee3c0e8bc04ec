"""Helpers that look at MP4s the way a player does: decode everything, count samples, not timestamps;
and helpers that make the media the tests need: other frame rates and audio formats, Veo-like
bitrates, and broken files (truncated, overwritten, moov first or last)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


@dataclass(frozen=True)
class Probe:
    frames: int  # by full decode
    fps: float
    width: int
    height: int
    duration: float  # container duration, seconds
    has_audio: bool
    audio_samples: int  # by full decode, per channel
    sample_rate: int
    corrupt_frames: int = 0  # video frames the decoder had to conceal errors in
    channels: int = 0


def probe(path: Path) -> Probe:
    """Decode every frame and sample. Decoding errors raise; concealed ones are counted in
    ``corrupt_frames``. The video is decoded with frame threads: FFmpeg's H.264 decoder neither
    detects nor flags damaged slices when it decodes with slice threads (PyAV's default)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.thread_type = "FRAME"
        fps = float(video.average_rate or 0)
        width, height = video.codec_context.width, video.codec_context.height
        duration = (container.duration or 0) / av.time_base
        frames = corrupt = 0
        for frame in container.decode(video):
            frames += 1
            corrupt += frame.is_corrupt
    samples, rate, channels = _decoded_audio_length(path)
    return Probe(frames, fps, width, height, duration, rate > 0, samples, rate, corrupt, channels)


def _decoded_audio_length(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0, 0, 0
        ctx = container.streams.audio[0].codec_context
        return sum(frame.samples for frame in container.decode(audio=0)), ctx.sample_rate, ctx.channels


def decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    """The first audio channel as float32, samples back to back from the start (pts ignored)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray()[0] for frame in container.decode(stream)]
        return np.concatenate(chunks).astype(np.float32), stream.codec_context.sample_rate


def frame_at(path: Path, index: int) -> np.ndarray:
    """Decoded frame ``index`` (counting decoded frames from 0) as an RGB uint8 array."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise IndexError(f"{path} has no frame {index}")


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def video_pts(path: Path) -> list[int]:
    """Presentation timestamps of the decoded frames, in the stream's time base, in decode output order."""
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def audio_onsets(path: Path, threshold: float = 0.4, quiet: float = 0.02) -> list[float]:
    """Start times (s) of the renderer's loud tone bursts: the first sample over ``threshold``
    after at least ``quiet`` seconds with no sample over it. Positions are sample counts from
    the start of the decoded audio, as a player would play it."""
    samples, rate = decoded_audio(path)
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return []
    gap = int(quiet * rate)
    starts = loud[np.concatenate(([True], np.diff(loud) > gap))]
    return [float(s) / rate for s in starts]


def top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4's top-level boxes, in file order (``ftyp``, ``moov``, ``mdat``…)."""
    boxes = []
    with open(path, "rb") as f:
        end = f.seek(0, 2)
        pos = 0
        while pos + 8 <= end:
            f.seek(pos)
            header = f.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
            if size == 1:  # 64-bit size follows the type
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # the box runs to the end of the file
                size = end - pos
            boxes.append(kind)
            if size < 8:
                raise ValueError(f"{path}: bad box size {size} at {pos}")
            pos += size
    return boxes


def video_packets(path: Path) -> list[bytes]:
    """The video packets' payloads in file (decode) order."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def reencode(src: Path, dst: Path, *, preset: str = "veryfast", audio: bool = True, fps: int = 24) -> None:
    """Re-encode ``src``'s video with libx264 ``preset`` (veryfast uses B-frames and CABAC,
    unlike the renderer's ultrafast), copying its audio packets as they are. At another ``fps``
    than the source's 24, frames are repeated or dropped so the length stays the same."""
    with av.open(str(src)) as inp, av.open(str(src)) as sound, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        video.codec_context.options = {"preset": preset, "crf": "23"}
        ain = sound.streams.audio[0] if audio and sound.streams.audio else None
        aout = out.add_stream_from_template(ain) if ain is not None else None
        i = 0  # output frame i shows source frame i * 24 // fps
        for k, frame in enumerate(inp.decode(vin)):
            planes = frame.to_ndarray(format="yuv420p")
            while i * 24 // fps == k:
                copy = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                copy.pts = i
                out.mux(video.encode(copy))
                i += 1
        out.mux(video.encode(None))
        if ain is not None:
            for packet in sound.demux(ain):
                if packet.dts is not None:
                    packet.stream = aout
                    out.mux(packet)


def with_audio(src: Path, dst: Path, *, rate: int, layout: str) -> Path:
    """``src`` with its video packets copied and its audio re-encoded to AAC at ``rate`` Hz and
    ``layout`` (``mono``, ``stereo``), sample for sample in time (the tone bursts stay put)."""
    with (
        av.open(str(src)) as inp,
        av.open(str(src)) as sound,
        av.open(str(dst), "w", options={"movflags": "+faststart"}) as out,
    ):
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("aac", rate=rate, layout=layout)
        for packet in inp.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                out.mux(packet)
        _encode_audio(sound, out, aout, rate, layout)
    return dst


def veo_like(src: Path, dst: Path, *, bitrate: int = 5_000_000) -> Path:
    """``src`` made to cost what a Veo segment costs to demux and decode: film grain over every
    frame, H.264 High profile with B-frames (libx264 veryfast) at about ``bitrate`` bit/s, and
    48 kHz stereo AAC."""
    grain = np.random.default_rng(0)
    with (
        av.open(str(src)) as inp,
        av.open(str(src)) as sound,
        av.open(str(dst), "w", options={"movflags": "+faststart"}) as out,
    ):
        vin = inp.streams.video[0]
        width, height = vin.codec_context.width, vin.codec_context.height
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.bit_rate = bitrate
        video.codec_context.options = {
            "preset": "veryfast",
            "profile": "high",
            "maxrate": str(bitrate * 6 // 5),
            "bufsize": str(bitrate * 2),
        }
        audio = out.add_stream("aac", rate=48_000, layout="stereo") if sound.streams.audio else None
        noise = [grain.integers(-3, 4, (height * 3 // 2, width), dtype=np.int16) for _ in range(8)]
        for i, frame in enumerate(inp.decode(vin)):
            planes = frame.to_ndarray(format="yuv420p").astype(np.int16) + noise[i % len(noise)]
            grainy = av.VideoFrame.from_ndarray(np.clip(planes, 0, 255).astype(np.uint8), format="yuv420p")
            grainy.pts = i
            out.mux(video.encode(grainy))
        out.mux(video.encode(None))
        if audio is not None:
            _encode_audio(sound, out, audio, 48_000, "stereo")
    return dst


def _encode_audio(
    inp: av.container.InputContainer, out: av.container.OutputContainer, stream: Any, rate: int, layout: str
) -> None:
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    for frame in [*inp.decode(inp.streams.audio[0]), None]:
        for resampled in resampler.resample(frame):
            out.mux(stream.encode(resampled))
    out.mux(stream.encode(None))


# --- broken media ------------------------------------------------------------------------------


def remux(src: Path, dst: Path, *, faststart: bool) -> Path:
    """Every packet of ``src`` copied into ``dst``, its index (``moov``) before the media data
    (``faststart``) or after it, as a plain MP4 muxer writes it."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


def truncated(src: Path, dst: Path, keep: float) -> Path:
    """The first ``keep`` (a fraction, 0 to 1) of ``src``'s bytes: a download or upload cut short."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def overwritten(src: Path, dst: Path, offset: int, length: int = 64, seed: int = 1) -> Path:
    """``src`` with ``length`` random bytes written over it at ``offset``: damage inside a file
    whose size and index still look right."""
    data = bytearray(src.read_bytes())
    noise = random.Random(seed).randbytes(length)
    data[offset : offset + length] = noise[: len(data) - offset]
    dst.write_bytes(bytes(data))
    return dst


def packet_spans(path: Path, kind: str = "video") -> list[tuple[int, int, Fraction]]:
    """Each ``kind`` packet's file offset, size and presentation time (s), in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size and p.pts is not None]
        return [(p.pos, p.size, Fraction(p.pts) * p.time_base) for p in packets]
