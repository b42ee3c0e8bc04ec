"""Test-only launcher: ``longform serve`` with a video model steered by the prompt, so browser tests
can make a job fail or run slowly without test hooks in product code.

    python -m tests.browser.launcher --port N --data-dir DIR

A scene whose prompt contains ``[renderer fails]`` fails to render (a PermanentError, as a broken
renderer or a blocked prompt would), ``[renderer fails once]`` only the first time;
``[slow]`` takes SLOW_SECONDS before rendering.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from longform import local_server
from longform.adapters.preview_video_model import PreviewVideoModel
from longform.config import Settings
from longform.errors import PermanentError
from longform.ports import BlobStore, Operation, SegmentSpec

FAIL = "[renderer fails]"
FAIL_ONCE = "[renderer fails once]"  # the first start of that scene in this server fails, not the next
SLOW = "[slow]"
SLOW_SECONDS = 1.5
FAILURE = "injected renderer failure: the renderer crashed"


class ScriptedVideoModel:
    def __init__(self, blobs: BlobStore) -> None:
        self.inner = PreviewVideoModel(blobs)
        self.failed_once: set[tuple[str, int]] = set()

    def start(self, spec: SegmentSpec) -> str:
        if FAIL in spec.prompt:
            raise PermanentError(f"{FAILURE} on scene {spec.index + 1}")
        if FAIL_ONCE in spec.prompt and (spec.job_id, spec.index) not in self.failed_once:
            self.failed_once.add((spec.job_id, spec.index))
            raise PermanentError(f"{FAILURE} on scene {spec.index + 1}")
        if SLOW in spec.prompt:
            time.sleep(SLOW_SECONDS)
        return self.inner.start(spec)

    def poll(self, operation: str) -> Operation:
        return self.inner.poll(operation)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings.from_env().with_(data_dir=args.data_dir)
    local_server.serve(settings, args.port, model=ScriptedVideoModel, on_ready=lambda url: print(url, flush=True))


if __name__ == "__main__":
    sys.exit(main())
