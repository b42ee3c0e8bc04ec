"""The embedded MediaChecker: is this file the video it must be? Read with PyAV, before a segment
is stitched and before a video is called completed.

The rules, cheapest first (a failure at step 1 or 2 ends the check; steps 3 to 5 are one pass
over the file, and every problem they find is named):

1. Bytes. Not empty; an MP4 (its first top-level box is ``ftyp``, ``moov``, ``mdat``…, else it is
   named as what it looks like: a PNG, text…); every top-level box fits in the file (a box that
   runs past the end means the file was cut short, and its declared size says by how much); an
   index (``moov``). Reading box headers costs a few seeks.
2. Header. The container opens; exactly one video stream, H.264, of the asked width × height and
   frame rate (± 0.01 fps); an AAC audio stream when audio is asked.
3. Packets. Every packet is read (a demux of the whole file, which reads every byte of the media
   data): the video's packets must span the asked seconds within one frame, and every frame but
   the last must last one frame period (a constant frame rate).
4. Audio, decoded in full (cheap: AAC): no decoding error, and — when audio is asked — as many
   samples as the asked seconds, within one AAC frame (1024 samples).
5. Video, decoded in full when ``decode_video`` (the default): every frame decodes, none with
   concealed errors. This is the only step that sees damage inside the video data — bytes
   overwritten in a file whose size and index still look right — and the only one that costs
   real time (it is skipped for a file already found truncated).

Step 5 decodes with frame threads: FFmpeg's H.264 decoder with slice threads (PyAV's default)
neither detects nor flags damaged slices. It skips the loop filter, which only changes pixels
nobody looks at. Damage is found from the decoder's errors and the frames' ``corrupt`` flags
(set when it had to conceal errors), not by making it stop at the first anomaly
(``err_detect=explode``), which would also stop on harmless oddities in valid files from other
encoders. Damage that still decodes as valid data (a flipped bit in a coefficient, say) is not
found: nothing short of a checksum made by the encoder could.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from ..errors import BrokenMedia

if TYPE_CHECKING:  # ports imports pydantic and the job's models: a stitch process need not
    from ..ports import BlobStore, MediaExpectation

_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}  # the MP4 header says everything needed
FPS_TOLERANCE = 0.01
AAC_FRAME = 1024  # samples
# Top-level boxes an MP4 (or QuickTime) file may start with.
_FIRST_BOXES = {"ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "pnot", "uuid", "sidx", "moof", "pdin"}


class PyavMediaChecker:
    """A MediaChecker over a BlobStore. ``decode_video=False`` skips rule 5 (see the module
    docstring): truncation, missing packets and broken audio are still caught, damage inside the
    video data is not. That is enough for a file whose video packets are byte copies of checked
    ones, the stitched video."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def check(self, key: str, expected: MediaExpectation, *, decode_video: bool = True) -> None:
        if not self.blobs.exists(key):
            raise BrokenMedia(f"{key}: the file is missing")
        with self.blobs.local_path(key) as path:
            check_file(path, expected, name=key, decode_video=decode_video)


def check_file(path: Path, expected: MediaExpectation, *, name: str | None = None, decode_video: bool = True) -> None:
    """Raise BrokenMedia naming ``name`` (default: the file's name) and every problem found."""
    problems = media_problems(path, expected, decode_video=decode_video)
    if problems:
        raise BrokenMedia(f"{name or path.name}: {'; '.join(problems)}")


def media_problems(path: Path, expected: MediaExpectation, *, decode_video: bool = True) -> list[str]:
    """What is wrong with the file at ``path``, in words; empty when it is the video expected."""
    layout = read_layout(path)
    if layout.unreadable:
        return [f"cannot be read: {layout.unreadable}"]
    try:
        container = av.open(str(path), options=_OPEN_OPTIONS)
    except av.error.FFmpegError as exc:
        return [f"cannot be read: {ffmpeg_words(exc)}"]
    with container:
        problems = _header_problems(container, expected)
        if problems:
            return problems
        scan = _Scan(container, expected, decode_video=decode_video and not layout.truncated)
        scan.run()
        if layout.truncated:
            problems.append(layout.truncated)
        problems += scan.problems()
    return problems


# --- rule 1: the bytes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """What the top-level boxes say: ``unreadable`` (no container to open), or ``truncated`` (the
    media data is cut short but the index is there), in words; both None for a whole file."""

    unreadable: str | None = None
    truncated: str | None = None


def read_layout(path: Path) -> Layout:
    size = path.stat().st_size
    if size == 0:
        return Layout(unreadable="the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(16)
        if len(head) < 8 or head[4:8].decode("latin-1") not in _FIRST_BOXES:
            return Layout(unreadable=f"it is {_looks_like(head + f.read(48))}, not an MP4 video")
        boxes: list[str] = []
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
            if box_size == 1 and len(header) >= 16:  # a 64-bit size follows the type
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - pos
            if box_size < 8 or not _printable(kind):
                return Layout(unreadable=f"its structure is broken at byte {pos:,} (no valid MP4 box there)")
            boxes.append(kind)
            if pos + box_size > size:
                have = size - pos
                if kind == "mdat" and "moov" in boxes:
                    return Layout(
                        truncated=f"the file is truncated: {_bytes(box_size - have)} of its "
                        f"{_bytes(box_size)} of media data are missing"
                    )
                if kind == "mdat":
                    return Layout(
                        unreadable=f"the file ends {_bytes(have)} into its {_bytes(box_size)} of media data, "
                        "before its index (moov box): it is truncated"
                    )
                return Layout(unreadable=f"the file ends {_bytes(have)} into its {kind} box: it is truncated")
            pos += box_size
    if "moov" not in boxes:
        return Layout(unreadable="it has no index (moov box)")
    return Layout()


def _looks_like(head: bytes) -> str:
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "a Matroska or WebM file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = " ".join(text.split())[:24]
        return f"text ({first!r}…)"
    return "unknown data"


def _printable(kind: str) -> bool:
    return all(c in string.ascii_letters + string.digits + " ©_-" for c in kind)


# --- rule 2: the header --------------------------------------------------------------------------


def _header_problems(container: Any, expected: MediaExpectation) -> list[str]:
    videos, audios = container.streams.video, container.streams.audio
    if not videos:
        return ["it has no video stream"]
    if len(videos) > 1:
        return [f"it has {len(videos)} video streams where one was asked"]
    video = videos[0]
    ctx = video.codec_context
    problems = []
    if ctx.name != "h264":
        problems.append(f"its video is {ctx.name} where H.264 was asked")
    if (ctx.width, ctx.height) != (expected.width, expected.height):
        problems.append(f"{ctx.width}x{ctx.height} where {expected.width}x{expected.height} was asked")
    rate = video.average_rate or video.guessed_rate
    if rate is None:
        problems.append("its video has no frame rate")
    elif abs(float(rate) - expected.fps) > FPS_TOLERANCE:
        problems.append(f"{fps_words(rate)} fps where {expected.fps} were asked")
    if expected.audio:
        if not audios:
            problems.append("no audio stream")
        elif audios[0].codec_context.name != "aac":
            problems.append(f"its audio is {audios[0].codec_context.name} where AAC was asked")
    return problems


# --- rules 3 to 5: packets and decoding ----------------------------------------------------------


class _Scan:
    """One pass over every packet: spans and durations, audio decoded, video decoded if asked."""

    def __init__(self, container: Any, expected: MediaExpectation, *, decode_video: bool) -> None:
        self.container, self.expected, self.decode_video = container, expected, decode_video
        self.video = container.streams.video[0]
        self.audio = container.streams.audio[0] if container.streams.audio else None
        if decode_video:
            self.video.thread_type = "FRAME"  # slice threads hide damaged slices (module docstring)
            self.video.codec_context.options = {"skip_loop_filter": "all"}
        self.tb: Fraction = self.video.time_base
        self.rate = Fraction(self.video.average_rate or self.video.guessed_rate or expected.fps)
        self.packets = 0
        self.first_pts: int | None = None
        self.end_pts: int | None = None
        self.durations: list[int] = []
        self.frames = 0
        self.video_damage: str | None = None
        self.audio_samples = 0
        self.audio_damage: str | None = None
        self.read_error: str | None = None

    def run(self) -> None:
        streams = [s for s in (self.video, self.audio) if s is not None]
        packets = iter(self.container.demux(streams))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                self.read_error = f"it cannot be read past {_seconds(self._end_seconds())} s: {ffmpeg_words(exc)}"
                return
            if packet.stream is self.video:
                self._video(packet)
            else:
                self._audio(packet)

    def _video(self, packet: Any) -> None:
        if packet.size:
            self.packets += 1
            if packet.pts is not None:
                duration = packet.duration or 0
                end = packet.pts + duration
                self.first_pts = packet.pts if self.first_pts is None else min(self.first_pts, packet.pts)
                self.end_pts = end if self.end_pts is None else max(self.end_pts, end)
                self.durations.append(duration)
            if packet.is_corrupt and self.video_damage is None:
                self.video_damage = f"the video is damaged at {self._at(packet.pts)} s (a packet is cut short)"
        if not self.decode_video or self.video_damage is not None:
            return
        try:
            for frame in packet.decode():
                self.frames += 1
                if frame.is_corrupt:
                    at = self._at(frame.pts)
                    self.video_damage = f"the video is corrupt at {at} s (frame {self.frames} decodes with errors)"
                    return
        except av.error.FFmpegError as exc:
            # Reported when the packet that failed is due out; the frames before it all came out.
            at = _seconds(self.frames / self.rate)
            self.video_damage = f"the video is corrupt at {at} s (frame {self.frames + 1}: {ffmpeg_words(exc)})"

    def _audio(self, packet: Any) -> None:
        if self.audio_damage is not None:
            return
        try:
            for frame in packet.decode():
                self.audio_samples += frame.samples
        except av.error.FFmpegError as exc:
            at = Fraction(packet.pts or 0) * packet.time_base
            self.audio_damage = f"the audio is corrupt at {_seconds(at)} s: {ffmpeg_words(exc)}"

    def _at(self, pts: int | None) -> str:
        return _seconds((pts or 0) * self.tb - (self.first_pts or 0) * self.tb)

    def _end_seconds(self) -> Fraction:
        if self.first_pts is None or self.end_pts is None:
            return Fraction(0)
        return (self.end_pts - self.first_pts) * self.tb

    def problems(self) -> list[str]:
        expected = self.expected
        problems = []
        if self.read_error:
            problems.append(self.read_error)
        seconds = self._end_seconds()
        frame = Fraction(1, expected.fps)
        if abs(seconds - Fraction(expected.seconds)) > frame * Fraction(1001, 1000):
            problems.append(f"{_seconds(seconds)} s of video where {_seconds(expected.seconds)} s were asked")
        varying = self._varying_frames(frame)
        if varying:
            problems.append(varying)
        if self.video_damage:
            problems.append(self.video_damage)
        elif self.decode_video and not self.read_error and self.frames != self.packets:
            problems.append(f"only {self.frames} of its {self.packets} video frames decode")
        if self.audio_damage:
            problems.append(self.audio_damage)
        elif expected.audio and self.audio is not None:
            ctx = self.audio.codec_context
            rate, frame_size = ctx.sample_rate, ctx.frame_size or AAC_FRAME
            if rate and abs(self.audio_samples - expected.seconds * rate) > frame_size:
                have = Fraction(self.audio_samples, rate)
                problems.append(f"{_seconds(have)} s of audio where {_seconds(expected.seconds)} s were asked")
        return problems

    def _varying_frames(self, frame: Fraction) -> str | None:
        """Every frame but the last (muxers differ on it) must last one frame period, within one
        tick of the time base or 1 %, whichever is larger."""
        durations = self.durations[:-1]
        if not durations:
            return None
        nominal = frame / self.tb
        slack = max(Fraction(1), nominal / 100)
        shortest, longest = min(durations), max(durations)
        if abs(shortest - nominal) <= slack and abs(longest - nominal) <= slack:
            return None
        ms = [_seconds(1000 * d * self.tb) for d in (shortest, longest)]
        return f"its frames last from {ms[0]} to {ms[1]} ms: not a constant {self.expected.fps} fps"


# --- words ---------------------------------------------------------------------------------------


def ffmpeg_words(exc: av.error.FFmpegError) -> str:
    """An FFmpeg error as words, without its errno or the C function it came from."""
    words = str(exc.strerror or type(exc).__name__)
    return words[:1].lower() + words[1:]


def fps_words(rate: Fraction | float) -> str:
    return f"{float(rate):.2f}".rstrip("0").rstrip(".")


def _seconds(value: Fraction | float) -> str:
    """3.08, 8, 0.5: two decimals at most, no trailing zeros."""
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _bytes(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f} MB"
    if n >= 1_000:
        return f"{n / 1_000:.0f} KB"
    return f"{n} bytes"
