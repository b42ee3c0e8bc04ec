"""The embedded FrameExtractor: a video's last frame as a PNG, with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image

from ..errors import PermanentError
from ..ports import BlobStore
from ..processes import scratch_dir


def extract_last_frame(video: Path, png: Path) -> None:
    """Write the last frame (in presentation order) of ``video`` to ``png``.

    Seeks to the last keyframe and decodes from there instead of decoding the whole file.
    """
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise PermanentError(f"{video.name} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = None
        if stream.duration:
            # Seeking to the end lands on the keyframe at or before it; decoding from there
            # reaches every frame of the last GOP.
            container.seek((stream.start_time or 0) + stream.duration, stream=stream, backward=True)
            last = _last_decoded(container, stream)
        if last is None:  # no duration in the header, or the seek found nothing: decode it all
            container.seek(0)
            last = _last_decoded(container, stream)
        if last is None:
            raise PermanentError(f"{video.name} has no decodable video frame")
        Image.fromarray(last.to_ndarray(format="rgb24")).save(png, format="PNG", compress_level=1)


def _last_decoded(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> av.VideoFrame | None:
    last = None
    for frame in container.decode(stream):
        if last is None or frame.pts is None or last.pts is None or frame.pts >= last.pts:
            last = frame
    return last


class PyavFrameExtractor:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def last_frame(self, video_key: str, image_key: str) -> None:
        with scratch_dir("frame") as tmp, self.blobs.local_path(video_key) as video:
            png = tmp / "last.png"
            try:
                extract_last_frame(video, png)
            except (av.error.FFmpegError, OSError) as exc:
                raise PermanentError(f"cannot read the last frame of {video_key}: {exc}") from exc
            self.blobs.upload(image_key, png)
