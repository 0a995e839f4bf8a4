"""Long steps report plain phase lines on stderr when it is not a terminal (CI logs,
pipes): a start, a step at most every ten seconds with the time left, an end with the
time taken."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgecomp.commands.progress import PhaseLines, duration, step_line, time_left

ROOT = Path(__file__).resolve().parents[2]
DURATION = r"(\d+\.\d s|\d+ min \d\d s)"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_phase_lines_start_step_at_most_every_interval_and_end():
    out, clock = io.StringIO(), Clock()
    progress = PhaseLines(out, interval=10.0, clock=clock)
    for step in range(1, 101):  # 100 steps, 1 s apart: the phase starts at the first
        clock.now += 1.0
        progress("training", step, 100)
    lines = out.getvalue().splitlines()
    assert lines[0] == "training: started (100 steps)"
    assert lines[-1] == "training: done in 1 min 39 s"
    steps = lines[1:-1]
    assert len(steps) == 9
    assert steps[0] == "training: step 11/100 after 10.0 s, about 1 min 29 s left"
    assert all(re.fullmatch(rf"training: step \d+/100 after {DURATION}, about {DURATION} left",
                            line) for line in steps)
    assert steps[-1] == "training: step 91/100 after 1 min 30 s, about 9.0 s left"


def test_the_time_left_follows_the_pace_of_the_steps_so_far():
    # 8.7 s an inference, 50 timed runs: after 3 runs, 47 more at that pace.
    assert time_left(26.1, 3, 47) == pytest.approx(47 * 8.7)
    assert step_line("timed runs", 3, 50, 26.1) == \
        "timed runs: step 3/50 after 26.1 s, about 6 min 49 s left"
    # A phase first reported at its second step: the pace is that of the steps since.
    assert step_line("samples", 4, 10, 17.4, first=2) == \
        "samples: step 4/10 after 17.4 s, about 52.2 s left"
    # Nothing done yet, or nothing left: no guess.
    assert time_left(5.0, 0, 50) is None and time_left(5.0, 50, 0) is None
    assert step_line("timed runs", 0, 50, 5.0) == "timed runs: step 0/50 after 5.0 s"


def test_slow_steps_get_a_line_each_and_fast_ones_do_not_flood_the_log():
    """One line per slow step (8.7 s runs, fewer than one per interval) but at most one
    per interval for fast ones, whatever the count."""
    out, clock = io.StringIO(), Clock()
    progress = PhaseLines(out, interval=10.0, clock=clock)
    progress("slow", 0, 5)
    for step in range(1, 6):
        clock.now += 12.0
        progress("slow", step, 5)
    progress("fast", 0, 100_000)
    for step in range(1, 100_001):
        clock.now += 0.001
        progress("fast", step, 100_000)
    lines = out.getvalue().splitlines()
    slow = [line for line in lines if line.startswith("slow: step")]
    assert slow == [f"slow: step {k}/5 after {duration(12.0 * k)}, about "
                    f"{duration(12.0 * (5 - k))} left" for k in range(1, 5)]
    fast = [line for line in lines if line.startswith("fast:")]
    assert len(fast) == 11 and fast[-1] == "fast: done in 1 min 40 s"


def test_a_phase_run_again_starts_again_and_a_one_step_phase_is_two_lines():
    out, clock = io.StringIO(), Clock()
    progress = PhaseLines(out, clock=clock)
    progress("pass fold", 0, 1)
    clock.now += 2.5
    progress("pass fold", 1, 1)
    progress("timing interleaved", 0, 3)
    progress("timing interleaved", 1, 3)
    progress("timing interleaved", 0, 3)  # the next group of artifacts
    assert out.getvalue().splitlines() == [
        "pass fold: started", "pass fold: done in 2.5 s",
        "timing interleaved: started (3 steps)", "timing interleaved: started (3 steps)"]


def test_durations_read_as_a_person_would_say_them():
    assert duration(0.04) == "0.0 s" and duration(59.9) == "59.9 s"
    assert duration(26 * 60 + 3.4) == "26 min 03 s"


def edgecomp(*args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGECOMP_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edgecomp.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # stderr: a pipe


@pytest.mark.slow
def test_the_first_plan_says_it_is_training_the_demo(tmp_path):
    """On an empty cache `plan` trains the demo first (a minute on a busy machine)."""
    done = edgecomp("plan", "--target", "pi4", cache=tmp_path / "empty-cache", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "training: started (184 steps)", done.stderr
    assert re.fullmatch(rf"training: done in {DURATION}", lines[-1]), done.stderr
    assert all(line.startswith("training: step ") for line in lines[1:-1]), done.stderr
    assert "\x1b" not in done.stderr
    assert "plan for demo-cnn on pi4" in done.stdout


@pytest.mark.slow
def test_compress_names_each_pass_as_it_runs(tmp_path, demo_source):
    cache = Path(os.environ["EDGECOMP_CACHE"])  # the session's, with the demo trained
    done = edgecomp("compress", "--pass", "fold", "--pass",
                    "prune.magnitude sparsity=0.5 finetune_epochs=1", "-o", "out",
                    cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    phases = [line for line in done.stderr.splitlines() if re.match(r"(pass|training)", line)]
    assert phases[:3] == ["pass fold: started", phases[1], "pass prune.magnitude: started"]
    assert phases[1].startswith("pass fold: done in ")
    assert phases[3] == "training: started (23 steps)"
    assert phases[-1].startswith("pass prune.magnitude: done in ")
