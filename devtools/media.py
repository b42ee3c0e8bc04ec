"""Helpers that look at MP4s the way a player does: decode everything, count samples, not timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def probe(path: Path) -> Probe:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps = float(video.average_rate or 0)
        width, height = video.codec_context.width, video.codec_context.height
        duration = (container.duration or 0) / av.time_base
        frames = sum(1 for _ in container.decode(video=0))
    samples, rate = _decoded_audio_length(path)
    return Probe(frames, fps, width, height, duration, rate > 0, samples, rate)


def _decoded_audio_length(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0, 0
        rate = container.streams.audio[0].codec_context.sample_rate
        return sum(frame.samples for frame in container.decode(audio=0)), rate


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


def reencode(src: Path, dst: Path, *, preset: str = "veryfast", audio: bool = True) -> None:
    """Re-encode ``src``'s video with libx264 ``preset`` (veryfast uses B-frames and CABAC,
    unlike the renderer's ultrafast), copying its audio packets as they are."""
    with av.open(str(src)) as inp, av.open(str(src)) as sound, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        video.codec_context.options = {"preset": preset, "crf": "23"}
        ain = sound.streams.audio[0] if audio and sound.streams.audio else None
        aout = out.add_stream_from_template(ain) if ain is not None else None
        for i, frame in enumerate(inp.decode(vin)):
            copy = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
            copy.pts = i
            out.mux(video.encode(copy))
        out.mux(video.encode(None))
        if ain is not None:
            for packet in sound.demux(ain):
                if packet.dts is not None:
                    packet.stream = aout
                    out.mux(packet)
