"""Media fixtures: small real MP4s rendered once per test session and shared (read-only) by tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from longform.adapters.preview_video_model import render_preview

SMALL = (320, 180)  # stitching and extraction don't care about size; small keeps the suite fast


@pytest.fixture(scope="session")
def render(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``render(name, prompt=…, seconds=…, …)``: a rendered MP4, made once per distinct call."""
    folder = tmp_path_factory.mktemp("renders")
    made: dict[str, Path] = {}

    def make(name: str, **options: Any) -> Path:
        key = f"{name}:{sorted(options.items())}"
        if key not in made:
            out = folder / f"{name}.mp4"
            assert not out.exists(), f"render name {name!r} reused with different options"
            settings: dict[str, Any] = {
                "width": SMALL[0],
                "height": SMALL[1],
                "generate_audio": True,
                "seed": 7,
                "label": None,
                **options,
            }
            render_preview(out, **settings)
            made[key] = out
        return made[key]

    return make
