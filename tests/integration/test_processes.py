"""This machine's processes: scratch folders a killed process leaves are removed by the next one;
a lease holder of this host that is no longer alive is gone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from longform.processes import gone, scratch_dir, this_process


def test_folders_left_by_killed_processes_are_removed_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed outright (SIGKILL) inside ``scratch_dir`` leaves its folder; the next
    ``scratch_dir`` removes it. Folders of live processes and of other hosts are left alone."""
    code = (
        "import os, signal\n"
        "from longform.processes import scratch_dir\n"
        "with scratch_dir('stitch') as folder:\n"
        "    (folder / 'video.mp4').write_bytes(b'x' * 1000)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", code], env=env, check=False)
    assert killed.returncode == -signal.SIGKILL
    [left] = list(tmp_path.iterdir())
    assert left.name.startswith("longform-stitch-") and (left / "video.mp4").exists()
    mine = tmp_path / f"longform-frame-{os.getpid()}@{socket.gethostname()}-abc123de"
    elsewhere = tmp_path / "longform-stitch-1@another-host-abc123de"
    mine.mkdir()
    elsewhere.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    with scratch_dir("stitch") as folder:
        assert sorted(tmp_path.iterdir()) == sorted([folder, mine, elsewhere])
    assert sorted(tmp_path.iterdir()) == sorted([mine, elsewhere])


def test_a_lease_holder_is_gone_only_when_it_is_a_dead_process_of_this_host() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    assert not gone(this_process())
    assert gone(f"{host}:{dead.stdout.strip()}")
    assert not gone(f"another-host:{dead.stdout.strip()}")  # not ours to test
    assert not gone(f"{host}:not-a-pid")
