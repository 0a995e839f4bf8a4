"""How far the agent's long loops are, as lines on stderr that the host reads while it waits.

stdout carries the one JSON report; a stderr line that starts with `PREFIX` says how far a
loop has come: `edgecomp-progress {"phase": "timed runs", "done": 3, "total": 50}`. Only
a loop that is long (expected to take `LONG_S` or more, or running that long already)
writes them, at most one a second, so quick measurements stay quiet. The lines are no
part of the report (its protocol version is unchanged): a host that does not read them, or
an agent that does not write them, only goes without live progress. On an emulated board
one inference can take seconds, and 50 timed runs many minutes.
"""

import json
import math
import sys
import time

PREFIX = "edgecomp-progress "
EVERY_S = 1.0  # at most one line a second, whatever the pace of the loop
LONG_S = 10.0  # a loop expected to take this long or longer reports its progress


def line(phase, done, total):
    """The stderr line for `done` of `total` steps of `phase`."""
    return PREFIX + json.dumps({"phase": phase, "done": done, "total": total})


def parse(text):
    """(phase, done, total) from one of the agent's stderr lines; None for any other line
    (a runtime's banner, a warning)."""
    if not text.startswith(PREFIX):
        return None
    try:
        data = json.loads(text[len(PREFIX):])
        phase, done, total = data["phase"], data["done"], data["total"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(phase, str) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (done, total)):
        return None
    return phase, done, total


def expected_runs(runs, seconds, done, elapsed, per_run):
    """How many runs a loop of at least `runs` runs and at least `seconds` seconds makes,
    guessed after `done` runs in `elapsed` seconds, one taking `per_run` seconds."""
    if per_run <= 0:
        return max(runs, done)
    more_for_time = math.ceil(max(0.0, seconds - elapsed) / per_run)
    return max(runs, done + more_for_time)


class Reporter:
    """Writes a long phase's progress lines: from its start (or from when it turns out to be
    long), at most one line every `every` seconds, and its end."""

    def __init__(self, phase, stream=None, clock=None, every=EVERY_S, long=LONG_S):
        self.phase = phase
        self.stream = stream
        self.clock = clock or time.perf_counter  # the clock the agent times with
        self.every = every
        self.long = long
        self.started = None
        self.shown = None  # when the last line was written; None: none yet

    def __call__(self, done, total, per_step=None):
        """`done` of `total` steps, each taking about `per_step` seconds where known."""
        now = self.clock()
        if self.started is None:
            self.started = now
        if self.shown is None:
            left = per_step * (total - done) if per_step is not None else 0.0
            if now - self.started < self.long and left < self.long:
                return  # short so far, and expected to stay short
        elif done < total and now - self.shown < self.every:
            return
        self.shown = now
        stream = self.stream or sys.stderr
        stream.write(line(self.phase, done, total) + "\n")
        stream.flush()
