"""On a terminal, `longform generate` draws a live progress bar (rich) instead of plain lines."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest


def run_on_a_terminal(args: list[str], cwd: Path, timeout: float = 180) -> tuple[int, str]:
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen(args, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the other side closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_generate_on_a_terminal_shows_a_progress_bar_with_messages_and_elapsed_time(tmp_path: Path) -> None:
    code, screen = run_on_a_terminal(
        [sys.executable, "-m", "longform", "generate", "A kite", "A kite in a storm", "--segment-seconds", "4",
         "--data-dir", "data", "--out", "v.mp4"],
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, screen
    assert "Imaginating Scene... scene 1 of 2" in screen
    assert "Stitching Masterpiece..." in screen
    assert "━" in screen  # the bar
    assert "100%" in screen
    assert "0:00:" in screen  # elapsed time
    assert "\x1b[" in screen  # redrawn in place, not printed line by line
    assert str((tmp_path / "v.mp4").resolve()) in screen.replace("\r\n", "").replace("\n", "")
