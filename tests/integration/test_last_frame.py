"""The last-frame extractor finds the true last frame, quickly, whatever the GOP structure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devtools.media import frames, reencode
from longform.adapters.local_blob_store import LocalBlobStore
from longform.adapters.pyav_frames import PyavFrameExtractor, extract_last_frame
from longform.errors import PermanentError

pytestmark = pytest.mark.slow

Render = Callable[..., Path]


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("seconds", [1, 3])  # shorter than one GOP; ends mid-GOP (keyframes every 2 s)
def test_extracts_the_true_last_frame(tmp_path: Path, render: Render, seconds: int) -> None:
    video = render(f"last-{seconds}", prompt="a fox", seconds=seconds)
    png = tmp_path / "last.png"

    extract_last_frame(video, png)

    decoded = frames(video)
    assert np.array_equal(_png(png), decoded[-1])
    assert not np.array_equal(_png(png), decoded[-2])


def test_extracts_the_last_frame_in_presentation_order_with_b_frames(tmp_path: Path, render: Render) -> None:
    video = tmp_path / "bframes.mp4"
    reencode(render("last-3", prompt="a fox", seconds=3), video, preset="veryfast")
    png = tmp_path / "last.png"

    extract_last_frame(video, png)

    assert np.array_equal(_png(png), frames(video)[-1])


def test_extractor_reads_and_writes_through_the_blob_store(tmp_path: Path, render: Render) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.upload("jobs/j/segments/0.mp4", render("last-1", prompt="a fox", seconds=1))

    PyavFrameExtractor(blobs).last_frame("jobs/j/segments/0.mp4", "jobs/j/frames/0.png")

    image = Image.open(blobs.path("jobs/j/frames/0.png"))
    assert image.format == "PNG" and image.size == (320, 180)


def test_extractor_fails_permanently_on_a_file_that_is_not_a_video(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    blobs.upload("jobs/j/segments/0.mp4", junk)

    with pytest.raises(PermanentError) as caught:
        PyavFrameExtractor(blobs).last_frame("jobs/j/segments/0.mp4", "jobs/j/frames/0.png")
    assert caught.value.__cause__ is not None
    assert not blobs.exists("jobs/j/frames/0.png")
