"""Watching a board lock and processes, and waiting on a condition, for the tests of runs
that must free the board."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path


def held(lock: Path) -> bool:
    """Whether some process holds the flock on `lock` (a missing file is not held)."""
    if not lock.exists():
        return False
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(condition, seconds: float) -> bool:
    """Whether `condition()` became true within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def end(process) -> None:
    """Kill `process` (a Popen) if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
        process.wait()
