"""Progress of long steps when output is not a terminal: plain phase lines on stderr.

On a terminal the CLI draws rich progress bars (`ui.progress_bars`); in a CI log or a pipe
those draw nothing, and a 26-minute pruning run looked hung. There each phase (one
progress description) gets a line when it starts, a "step i/n" line at most every
`interval` seconds while it runs (with the time left at the pace of its steps so far),
and a line with its duration when it ends.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, TextIO

STEP_INTERVAL_S = 10.0


@dataclass
class _Phase:
    started: float
    shown: float  # when its last line was written
    done: int
    first: int  # the count it started at (a board's phase is reported once it turns long)


def duration(seconds: float) -> str:
    """12.3 s, or 4 min 05 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def time_left(elapsed: float, steps: int, left: int) -> float | None:
    """Seconds for `left` more steps at the pace of `steps` taking `elapsed` seconds; None
    before the first step or after the last."""
    if steps <= 0 or left <= 0 or elapsed <= 0:
        return None
    return elapsed / steps * left


def step_line(description: str, done: int, total: int, elapsed: float, *,
              first: int = 0) -> str:
    """`training: step 11/100 after 10.0 s, about 1 min 21 s left`: the pace is that of
    the steps since the phase was first reported at step `first`."""
    line = f"{description}: step {done}/{total} after {duration(elapsed)}"
    left = time_left(elapsed, done - first, total - done)
    return line if left is None else f"{line}, about {duration(left)} left"


class PhaseLines:
    """A `progress(description, done, total)` callback that writes plain lines.

    A description seen for the first time, or whose count went back (the same step run
    again, e.g. training in a second pass), starts a phase; reaching `total` ends it. Boards
    of a fleet report from their own threads, hence the lock.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = STEP_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.phases: dict[str, _Phase] = {}
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        stream = self.stream or sys.stderr  # read late: tests and callers swap stderr
        stream.write(line + "\n")
        stream.flush()

    def __call__(self, description: str, done: int, total: int) -> None:
        with self.lock:
            now = self.clock()
            phase = self.phases.get(description)
            if phase is None or done < phase.done:
                phase = self.phases[description] = _Phase(started=now, shown=now, done=done,
                                                          first=done)
                self.write(f"{description}: started" + (f" ({total} steps)" if total > 1
                                                         else ""))
            if total and done >= total:
                del self.phases[description]
                self.write(f"{description}: done in {duration(now - phase.started)}")
                return
            if done > phase.done and now - phase.shown >= self.interval:
                phase.shown = now
                self.write(step_line(description, done, total, now - phase.started,
                                     first=phase.first))
            phase.done = done
