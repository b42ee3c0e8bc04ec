"""The embedded Stitcher: concatenate MP4 segments by stream copy with PyAV, audio kept in sync.

Video packets are copied byte for byte onto one continuous timeline (each input's pts shifted by
the running duration; dts shifted by the largest B-frame delay of any input, so they increase
across joins and never pass their pts). If the inputs' H.264 parameter sets differ, each input's
own are repeated before its keyframes and the track is tagged ``avc3`` (in-band parameter sets).

Audio is the trap: every AAC segment starts with a priming packet (decoded, then discarded through
the edit list) and ends padded to a whole packet, so copying every packet makes the audio run late
by about 35 ms per join (5 s segments) while the container's duration still looks right. A player
plays decoded samples back to back, so the audio is laid out by packet count, not timestamps:
output packet ``j`` plays samples ``[(j-1)·N, j·N)`` (packet 0 is the priming packet the edit list
skips), and at each join the previous input's trailing packets are kept or dropped so that the
next input's pts 0 lands on the packet boundary nearest its video start. The error stays within
half a packet (±10.7 ms at 48 kHz) and never accumulates. The next input keeps its own priming
packet, so its first samples decode exactly (dropping it instead garbles the first 21 ms: the
overlap-add partner of its first real packet is missing); the join costs the previous input at
most one packet, which decodes as a short fade. Inputs without audio, or with less audio than
video, are filled with encoded silence.

The track takes the first audio input's format. An input whose audio has another sample rate or
channel layout is decoded, resampled and encoded again to AAC in that format (with a fresh encoder,
so it starts with its own priming packet and joins exactly like a copied input); every other input's
audio is copied. Video is never re-encoded, so inputs of another codec, size or frame rate than the
first are refused, naming their position (joined, they would make a video that changes size or
frame rate midway). So are inputs that cannot be read or are cut short. Damage inside an input's
media data is not looked for here (that needs a full decode): the MediaChecker does that before a
segment is stitched.

Each input is opened once, and all of them before anything is written (the dts shift needs every
input's decode delay): its parameters come from its header (codec, size, frame rate, audio
format, and the first timestamps from the sample index), with no frame decoded, and its packets
are then copied from that same container, which is closed once copied. The price is memory: each
input held open keeps its first packet and demuxer buffers (about half a megabyte for a 720p
Veo segment) until its turn.

The output is a faststart MP4 (its index, the ``moov`` box, before the media data) written in one
pass: room for the index is reserved after the header (the mov muxer's ``moov_size``), enough for
the largest index the packets being copied can need, and what the index leaves of it is a ``free``
box (about 0.5 % of a Veo-like file). FFmpeg's own ``+faststart`` writes the index at the end and
then rewrites the whole file to move it to the front; that is used only when an input's header
does not count its packets, or if the room turned out too small.

Temporary folders (``scratch_dir``) are removed on every way out, exceptions included; a process
killed outright cannot remove its own, so each new one first removes those of dead processes.
"""

from __future__ import annotations

import contextlib
import errno
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from ..errors import BrokenMedia, PermanentError
from .pyav_checker import FPS_TOLERANCE, ffmpeg_words, fps_words, read_layout

if TYPE_CHECKING:  # for annotations only: the ports import the domain (pydantic), which a stitch never uses
    from ..ports import BlobStore, StitchJob, StitchSpec

# An MP4's header (its sample tables) gives codec, size, rates and timestamps: opening an input
# reads no further than its first packet (probesize) and decodes no frame. Without skip_frame,
# FFmpeg decodes that packet when it is video, as in a Veo file, to learn the pixel format, which
# a stream copy never needs: 15-17 ms an input for a Veo segment's I-frame, against under 1 ms.
_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0", "skip_frame": "all"}
_HOLD_BACK = 16  # audio packets kept back per input so a join can still drop its tail
# The largest index entry a packet can cost the mov muxer: its size (stsz, 4 bytes), duration
# (stts, 8), sample group (sbgp, 8), and a chunk of its own at worst (stsc 12, 64-bit stco 8);
# video packets also a composition offset (ctts, 8), a sync-sample entry (stss, 4) and a
# dependency byte (sdtp, 1). Each table is run-length coded or smaller when it can be. Plus the
# boxes that do not grow with the packets (headers, sample descriptions, edit lists): 32 KiB.
_INDEX_BYTES_AUDIO_PACKET = 40
_INDEX_BYTES_VIDEO_PACKET = 53
_INDEX_BYTES_FIXED = 32 * 1024


class _IndexRoomTooSmall(Exception):
    """The room reserved for the index did not hold it (the muxer refused to write it)."""


@dataclass(frozen=True)
class _AudioFormat:
    codec: str
    rate: int
    layout: str

    def __str__(self) -> str:
        return f"{self.codec} {self.rate / 1000:g} kHz {self.layout}"


@dataclass(frozen=True)
class _Probe:
    index: int  # the input's position, from 0
    path: Path
    container: Any  # the input, opened once: read here for its parameters, then copied from
    codec: str
    width: int
    height: int
    fps: Fraction | None
    extradata: bytes | None
    time_base: Fraction
    first_pts: int  # where the input's picture starts
    first_dts: int  # below first_pts when the input has B-frames
    audio: _AudioFormat | None

    @property
    def decode_delay(self) -> Fraction:
        return (self.first_pts - self.first_dts) * self.time_base

    @property
    def name(self) -> str:
        return f"segment {self.index} ({self.path.name})"


def concat_mp4(inputs: Sequence[Path], out: Path) -> None:
    """Concatenate ``inputs`` (MP4s of one codec, size and frame rate) into ``out``, a faststart
    MP4. On failure ``out`` is removed."""
    if not inputs:
        raise PermanentError("nothing to stitch")
    try:
        _concat(inputs, out, reserve=True)
    except _IndexRoomTooSmall:  # not expected (the room is sized for the worst case): stitch again
        _concat(inputs, out, reserve=False)


def _concat(inputs: Sequence[Path], out: Path, *, reserve: bool) -> None:
    with contextlib.ExitStack() as opened:
        probes = [_probe(i, Path(p), opened) for i, p in enumerate(inputs)]
        _stitch(probes, out, _index_room(probes) if reserve else None)


def _index_room(probes: list[_Probe]) -> int | None:
    """Bytes enough for the output's index, from the packets the inputs' headers count; None when
    a header does not count them (a fragmented MP4). The audio track has as many packets as the
    video timeline holds, plus the priming packet (see _AudioTrack.join), counted here with each
    input's video a frame longer and a packet more per join for the rounding."""
    video_packets, seconds = 0, Fraction(0)
    for p in probes:
        stream = p.container.streams.video[0]
        if not len(stream.index_entries) or stream.duration is None or p.fps is None:
            return None
        video_packets += len(stream.index_entries)
        seconds += stream.duration * p.time_base + 1 / p.fps
    audio = next((p for p in probes if p.audio), None)
    audio_packets = 0
    if audio is not None and audio.audio is not None:
        frame_size = audio.container.streams.audio[0].codec_context.frame_size or 1024
        audio_packets = math.ceil(seconds * audio.audio.rate / frame_size) + 2 * len(probes) + 2
    return _INDEX_BYTES_FIXED + video_packets * _INDEX_BYTES_VIDEO_PACKET + audio_packets * _INDEX_BYTES_AUDIO_PACKET


def _stitch(probes: list[_Probe], out: Path, index_room: int | None) -> None:
    first = probes[0]
    for p in probes[1:]:
        if p.codec != first.codec:
            raise PermanentError(f"{p.name} is {p.codec} video, but {first.name} is {first.codec}")
        if (p.width, p.height) != (first.width, first.height):
            raise PermanentError(
                f"{p.name} is {p.width}x{p.height}, but {first.name} is {first.width}x{first.height}: "
                "segments of different sizes cannot be joined without re-encoding"
            )
        if p.fps is None or first.fps is None or abs(float(p.fps - first.fps)) > FPS_TOLERANCE:
            raise PermanentError(
                f"{p.name} is {_fps(p.fps)}, but {first.name} is {_fps(first.fps)}: "
                "joined, they would make a video whose frame rate changes midway"
            )
    audio_probes = [p for p in probes if p.audio]
    track = audio_probes[0].audio if audio_probes else None
    reencoded = {p.index for p in audio_probes if p.audio != track}
    if reencoded and track is not None and track.codec != "aac":
        other = probes[min(reencoded)]
        raise PermanentError(
            f"{other.name} has {other.audio} audio, but {audio_probes[0].name} has {track} audio, "
            f"and {track.codec} audio cannot be made to match"
        )
    # One sample description serves the whole track; if the inputs' H.264 parameter sets differ,
    # repeat each input's own in band before its keyframes so every part decodes (and seeks) right.
    inband = len({p.extradata for p in probes}) > 1
    if inband and first.codec != "h264":
        raise PermanentError(f"the {first.codec} inputs have different codec parameters")

    reserved = {"moov_size": str(index_room)} if index_room else {"movflags": "+faststart"}
    output = av.open(str(out), "w", options=reserved)
    try:
        video_out = output.add_stream_from_template(first.container.streams.video[0])
        if inband:
            video_out.codec_tag = "avc3"  # the sample entry that declares in-band parameter sets
        audio: _AudioTrack | None = None
        if audio_probes:
            audio = _AudioTrack(output, output.add_stream_from_template(audio_probes[0].container.streams.audio[0]))
        output.start_encoding()
        video = _VideoTrack(output, video_out, max(p.decode_delay for p in probes))

        for probe in probes:
            with probe.container:  # closed once copied: its buffers are freed as the stitch goes
                _copy_input(probe, video, audio, inband, reencode=probe.index in reencoded)
        if audio is not None:
            audio.join(video.end_seconds)
        try:
            output.close()  # writes the index: it can fail too
        except av.error.FFmpegError as exc:
            if index_room and exc.errno == errno.EINVAL:  # "reserved_moov_size is too small"
                raise _IndexRoomTooSmall from exc
            raise
    except BaseException:
        with contextlib.suppress(Exception):  # the error that matters is the one being raised
            output.close()
        out.unlink(missing_ok=True)
        raise


def _fps(rate: Fraction | None) -> str:
    return "of no known frame rate" if rate is None else f"{fps_words(rate)} fps"


def _copy_input(probe: _Probe, video: _VideoTrack, audio: _AudioTrack | None, inband: bool, *, reencode: bool) -> None:
    container = probe.container
    start = video.end_seconds
    vin = container.streams.video[0]
    ain = container.streams.audio[0] if container.streams.audio and audio is not None else None
    if audio is not None and ain is None:
        audio.join(start)  # silence fills this input's span at the next join
    video.begin(probe)
    parameter_sets = _avcc_parameter_sets(probe.extradata) if inband else None
    encoder = _AudioReencoder(audio.stream.codec_context) if reencode and audio is not None else None
    audio_started = False

    def place(packet: Any) -> None:
        nonlocal audio_started
        assert audio is not None
        if not audio_started:
            audio_started = True
            # Place this input's first packet (usually its priming packet, pts < 0) so that
            # its pts 0 plays at the input's video start.
            audio.join(start + packet.pts * packet.time_base)
        audio.push(packet)

    for packet in container.demux([s for s in (vin, ain) if s is not None]):
        if packet.stream is vin:
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if parameter_sets and packet.is_keyframe:
                packet = _with_prefix(packet, parameter_sets)
            video.write(packet, probe.path)
        elif encoder is not None:
            for encoded in encoder.feed(packet):  # the end-of-stream marker flushes the encoder
                place(encoded)
        elif packet.dts is not None:
            place(packet)


class _AudioReencoder:
    """An input's audio decoded, resampled to the track's sample rate and layout, and encoded to
    AAC again. The packets come out with pts in samples of the track's rate, the encoder's priming
    packet first (pts < 0), shifted by where the input's decoded audio starts, so they are placed
    exactly as copied packets are."""

    def __init__(self, track: Any) -> None:
        self.rate: int = track.sample_rate
        encoder = av.CodecContext.create("aac", "w")
        encoder.sample_rate, encoder.layout, encoder.format = self.rate, track.layout, "fltp"
        encoder.time_base = Fraction(1, self.rate)
        encoder.options = {"aac_coder": "fast"}  # like the renderer: the default coder is ~3x slower
        encoder.open()
        self.encoder = encoder
        frame_size = encoder.frame_size or 1024
        self.resampler = av.AudioResampler(format="fltp", layout=track.layout, rate=self.rate, frame_size=frame_size)
        self.offset: int | None = None  # where the input's decoded audio starts, in samples
        self.sent = 0

    def feed(self, packet: Any) -> list[Any]:
        """Encoded packets for what ``packet`` decodes to; an end-of-stream packet (no data)
        flushes the decoder, the resampler and the encoder."""
        frames: list[Any] = list(packet.decode())
        final = packet.size == 0
        if final:
            frames.append(None)
        out: list[Any] = []
        for frame in frames:
            if frame is not None and self.offset is None:
                start = Fraction(frame.pts or 0) * frame.time_base if frame.time_base else Fraction(0)
                self.offset = round(start * self.rate)
            for resampled in self.resampler.resample(frame):
                resampled.pts, resampled.time_base = self.sent, Fraction(1, self.rate)
                self.sent += resampled.samples
                out += self.encoder.encode(resampled)
        if final:
            out += self.encoder.encode(None)
        for encoded in out:
            encoded.pts = encoded.dts = encoded.pts + (self.offset or 0)
            encoded.time_base = Fraction(1, self.rate)
        return out


class _VideoTrack:
    """Copies video packets onto one continuous timeline: each input's pts shifted to start where
    the previous one ended. With B-frames an input's dts start before its pts (by its decode
    delay); all dts are shifted by the largest delay of any input, so they stay increasing across
    joins and never pass their pts."""

    def __init__(self, output: Any, stream: Any, max_delay: Fraction) -> None:
        self.output, self.stream = output, stream
        self.tb: Fraction = stream.time_base
        self.max_delay = round(max_delay / self.tb)
        self.end = 0  # end of the timeline so far, in output ticks
        self.last_dts: int | None = None
        self._scale = (1, 1)
        self._pts_shift = self._dts_shift = 0

    @property
    def end_seconds(self) -> Fraction:
        return self.end * self.tb

    def begin(self, probe: _Probe) -> None:
        tb_in = probe.time_base
        self._scale = (tb_in.numerator * self.tb.denominator, tb_in.denominator * self.tb.numerator)
        self._pts_shift = self.end - self._rescale(probe.first_pts)
        self._dts_shift = self.end - self.max_delay - self._rescale(probe.first_dts)

    def write(self, packet: Any, path: Path) -> None:
        pts = self._rescale(packet.pts) + self._pts_shift
        dts = self._rescale(packet.dts) + self._dts_shift
        if self.last_dts is not None and dts <= self.last_dts:
            # Only with uneven frame durations; nudge it, as long as it stays before its pts.
            dts = self.last_dts + 1
            if dts > pts:
                raise PermanentError(f"{path.name}: cannot place its video timestamps after the previous input's")
        duration = self._rescale(packet.duration) if packet.duration else 0
        self.end = max(self.end, pts + duration)
        self.last_dts = dts
        packet.pts, packet.dts, packet.duration = pts, dts, duration
        packet.time_base = self.tb
        packet.stream = self.stream
        self.output.mux_one(packet)

    def _rescale(self, ts: int) -> int:
        num, den = self._scale
        return ts if num == den else (ts * num + den // 2) // den


class _AudioTrack:
    """Lays audio packets back to back; see the module docstring for the arithmetic."""

    def __init__(self, output: Any, stream: Any) -> None:
        self.output, self.stream = output, stream
        ctx = stream.codec_context
        self.rate: int = ctx.sample_rate
        self.frame_size: int = ctx.frame_size or 1024
        self.tb = Fraction(1, self.rate)
        self.written = 0
        self.pending: deque[Any] = deque()
        self.skip = 0  # packets to drop from the next input, if a join came too late to trim
        self._silence: bytes | None = None

    def join(self, at: Fraction) -> None:
        """Make the next packet written the one whose pts is ``at`` (seconds on the video timeline)."""
        target = round(at * self.rate / self.frame_size) + 1
        while self.pending and self.written < target:
            self._write(self.pending.popleft())
        self.pending.clear()  # the previous input's padding (and any audio past its video)
        while self.written < target:
            self._write(self._silent_packet())
        self.skip = self.written - target

    def push(self, packet: Any) -> None:
        if self.skip:
            self.skip -= 1
            return
        self.pending.append(packet)
        if len(self.pending) > _HOLD_BACK:
            self._write(self.pending.popleft())

    def _write(self, packet: Any) -> None:
        packet.pts = packet.dts = (self.written - 1) * self.frame_size
        packet.duration = self.frame_size
        packet.time_base = self.tb
        packet.stream = self.stream
        self.output.mux_one(packet)
        self.written += 1

    def _silent_packet(self) -> Any:
        if self._silence is None:
            self._silence = _encode_silence(self.stream.codec_context)
        packet = av.Packet(self._silence)
        packet.is_keyframe = True
        return packet


def _encode_silence(ctx: Any) -> bytes:
    """One steady-state packet of digital silence from the same encoder settings as the track."""
    import numpy as np  # only here: a stitch whose inputs all have audio never needs it

    if ctx.name != "aac":
        raise PermanentError(f"cannot make {ctx.name} silence to fill inputs without audio")
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = ctx.sample_rate, ctx.layout, "fltp"
    encoder.time_base = Fraction(1, ctx.sample_rate)
    encoder.open()
    zeros = np.zeros((ctx.layout.nb_channels, encoder.frame_size * 4), np.float32)
    frame = av.AudioFrame.from_ndarray(zeros, format="fltp", layout=ctx.layout)
    frame.sample_rate, frame.pts = ctx.sample_rate, 0
    packets = [*encoder.encode(frame), *encoder.encode(None)]
    return bytes(packets[2])  # past the priming packet, before the flush


def _probe(index: int, path: Path, opened: contextlib.ExitStack) -> _Probe:
    """Open the input (once: the copy reads from the same container) and read its parameters
    from its header, decoding nothing; ``opened`` closes it on every way out."""
    name = f"segment {index} ({path.name})"
    layout = read_layout(path)  # a few seeks: a file cut short is refused, not stitched short
    if layout.unreadable:
        raise BrokenMedia(f"{name} cannot be read: {layout.unreadable}")
    if layout.truncated:
        raise BrokenMedia(f"{name}: {layout.truncated}")
    try:
        container = opened.enter_context(av.open(str(path), options=_OPEN_OPTIONS))
        if not container.streams.video:
            raise BrokenMedia(f"{name} has no video stream")
        stream = container.streams.video[0]
        starts = _first_timestamps(stream) or _first_timestamps_by_demuxing(path)
        if starts is None or stream.time_base is None:
            raise BrokenMedia(f"{name} has no video frames")
        v = stream.codec_context
        audio = None
        if container.streams.audio:
            a = container.streams.audio[0].codec_context
            audio = _AudioFormat(a.name, a.sample_rate, a.layout.name)
        fps = stream.average_rate or stream.guessed_rate
        return _Probe(
            index, path, container, v.name, v.width, v.height, fps, v.extradata, stream.time_base, *starts, audio
        )
    except av.error.FFmpegError as exc:
        raise BrokenMedia(f"{name} cannot be read: {ffmpeg_words(exc)}") from exc


def _first_timestamps(stream: Any) -> tuple[int, int] | None:
    """Where the video's picture starts (pts) and its first packet's dts, from the header: the
    demuxer's sample index holds each packet's dts in the order it will read them. None when the
    header does not say (a fragmented MP4, whose index grows as it is read)."""
    entries = stream.index_entries
    if stream.start_time is None or not len(entries):
        return None
    return stream.start_time, entries[0].timestamp


def _first_timestamps_by_demuxing(path: Path) -> tuple[int, int] | None:
    """The same, by reading the first video packet (in a container of its own, so the copy still
    starts at the first packet)."""
    with av.open(str(path), options=_OPEN_OPTIONS) as container:
        stream = container.streams.video[0]
        first = next((p for p in container.demux(stream) if p.dts is not None and p.pts is not None), None)
        if first is None or first.pts is None or first.dts is None:
            return None
        return (stream.start_time if stream.start_time is not None else first.pts), first.dts


def _avcc_parameter_sets(avcc: bytes | None) -> bytes:
    """The SPS and PPS NAL units of an avcC record, each with a 4-byte length prefix."""
    if not avcc or avcc[0] != 1 or (avcc[4] & 3) != 3:
        raise PermanentError("unsupported H.264 parameter sets")
    out = bytearray()
    pos = 5
    for count_mask in (0x1F, 0xFF):  # SPS count (low 5 bits), then PPS count
        count = avcc[pos] & count_mask
        pos += 1
        for _ in range(count):
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            out += size.to_bytes(4, "big") + avcc[pos + 2 : pos + 2 + size]
            pos += 2 + size
    return bytes(out)


def _with_prefix(packet: Any, prefix: bytes) -> Any:
    new = av.Packet(prefix + bytes(packet))
    new.pts, new.dts, new.duration = packet.pts, packet.dts, packet.duration
    new.time_base, new.is_keyframe = packet.time_base, True
    return new


class PyavStitcher:
    """Stitches synchronously in ``start``; ``poll`` just reports the result."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def start(self, spec: StitchSpec) -> str:
        from ..processes import scratch_dir  # here: concat_mp4 alone needs no scratch folder

        with contextlib.ExitStack() as stack:
            paths = [stack.enter_context(self.blobs.local_path(key)) for key in spec.segment_keys]
            out = stack.enter_context(scratch_dir("stitch")) / "video.mp4"
            try:
                concat_mp4(paths, out)
            except av.error.FFmpegError as exc:
                raise PermanentError(f"stitching {len(paths)} segments failed: {ffmpeg_words(exc)}") from exc
            except OSError as exc:
                raise PermanentError(f"stitching {len(paths)} segments failed: {exc.strerror or exc}") from exc
            self.blobs.upload(spec.output_key, out)
        return "pyav/" + spec.output_key

    def poll(self, name: str) -> StitchJob:
        from ..ports import StitchJob

        return StitchJob(name, done=True, key=name.removeprefix("pyav/"))

    def cancel(self, name: str) -> None:
        """Nothing to stop: the stitch ended inside ``start``."""
