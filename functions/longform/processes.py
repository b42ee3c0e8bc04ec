"""This machine's processes: a name for this one, whether another is gone, and scratch folders
that a killed process does not leave behind.

Leases (one runner per job) and scratch folders both name a process by host and pid: a pid is
only tested on the host that made it (a temporary folder may be shared by containers).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

_SCRATCH = re.compile(r"longform-[a-z]+-(?P<pid>\d+)@(?P<host>[^/]+)-[a-z0-9_]+")


def this_process() -> str:
    """A lease holder's name: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def gone(holder: str) -> bool:
    """Whether a lease holder is a process of this machine that is no longer alive (its lease need
    not run out first: a killed CLI's job can be resumed at once)."""
    host, _, pid = holder.rpartition(":")
    return pid.isdigit() and _dead(host, int(pid))


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A new temporary folder ``longform-{kind}-{pid}@{host}-…``, removed however the ``with``
    block ends. A process killed outright (SIGKILL, an out-of-memory kill, a SIGTERM without a
    handler) never gets to remove its own, so each call first removes those of this host's
    processes that are no longer alive."""
    sweep_scratch()
    path = Path(tempfile.mkdtemp(prefix=f"longform-{kind}-{os.getpid()}@{socket.gethostname()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_scratch() -> list[Path]:
    """Remove the scratch folders left by dead processes of this host; return them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return removed
    for entry in entries:
        match = _SCRATCH.fullmatch(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        if _dead(match["host"], int(match["pid"])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _dead(host: str, pid: int) -> bool:
    """Whether process ``pid`` of ``host`` is known to be gone: only this host's can be tested."""
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
