"""On a terminal, `longform generate` draws a live progress bar (rich) instead of plain lines; tables
fit the terminal without cutting a job id; errors and log lines still go to stderr."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_cli_ids import queue_jobs

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_a_terminal(
    args: list[str], cwd: Path, timeout: float = 180, columns: int = 120, elsewhere: dict[str, Path] | None = None
) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on one pseudo-terminal, except the streams named in
    ``elsewhere`` ("stdout", "stderr"), which go to those files; the exit code and the screen."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    files = {name: path.open("w") for name, path in (elsewhere or {}).items()}
    out, err = (files.get(name, follower) for name in ("stdout", "stderr"))
    proc = subprocess.Popen(args, cwd=cwd, stdin=follower, stdout=out, stderr=err, env=env)
    os.close(follower)
    for file in files.values():
        file.close()
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


@pytest.mark.parametrize("columns", [40, 80, 120])
def test_list_on_a_terminal_fits_its_width_but_never_cuts_a_job_id(tmp_path: Path, columns: int) -> None:
    ids = [uuid.uuid4().hex for _ in range(3)]
    queue_jobs(tmp_path / "data", ids)
    code, screen = run_on_a_terminal(
        [sys.executable, "-m", "longform", "list", "--data-dir", "data"], cwd=tmp_path, columns=columns
    )
    assert code == 0, screen
    lines = ANSI.sub("", screen).splitlines()
    for job_id in ids:
        assert any(line.split()[:1] == [job_id] for line in lines), screen
    if columns >= 80:  # room for every column but the prompts, which shrink: nothing for the terminal to wrap
        assert max(len(line.rstrip()) for line in lines) <= columns, screen
        assert "Scene" in screen  # the prompt column, shrunk but there


@pytest.mark.parametrize("terminal", ["stdout", "stderr"])
def test_on_a_terminal_a_failed_job_and_the_log_still_go_to_stderr(tmp_path: Path, terminal: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/blobs").write_text("")  # the first scene cannot be written: the job fails
    piped = "stderr" if terminal == "stdout" else "stdout"
    code, screen = run_on_a_terminal(
        [sys.executable, "-m", "longform", "generate", "A scene", "--segment-seconds", "4", "--data-dir", "data"],
        cwd=tmp_path,
        elsewhere={piped: tmp_path / piped},
    )
    assert code == 1, screen
    err, out = (
        " ".join(ANSI.sub("", screen if terminal == name else (tmp_path / name).read_text()).split())  # unwrapped
        for name in ("stderr", "stdout")
    )
    for text in ("job failed (step segment-0-start)", "failed at step segment-0-start"):  # the reason, the log
        assert text in err, (out, err)
        assert text not in out, (out, err)
