"""The agent reports how far its long loops are on stderr (at most a line a second), stays
quiet for short ones, and the host turns the lines into its progress display."""

from __future__ import annotations

import io
import time
import types

import numpy as np
import pytest

import edgecomp.agent.measure as agent_measure
import edgecomp.agent.progress as agent_progress
from edgecomp.agent.progress import Reporter, expected_runs, line, parse
from edgecomp.commands.progress import PhaseLines
from edgecomp.pipeline import agent as host_agent


class SlowRuntime:
    """A runtime whose every inference takes `seconds` on the fake clock, as a mid-size
    model does on an emulated arm64 CPU (8.7 s)."""

    def __init__(self, clock, seconds):
        self.clock, self.seconds = clock, seconds

    def set_inputs(self, arrays):
        pass

    def invoke(self):
        self.clock.now += self.seconds

    def get_outputs(self):
        return [np.zeros(1)]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def timed_runs(monkeypatch, capsys, *, per_run, **options):
    clock = Clock()
    fake_time = types.SimpleNamespace(perf_counter=clock)
    monkeypatch.setattr(agent_measure, "time", fake_time)
    monkeypatch.setattr(agent_progress, "time", fake_time)
    args = types.SimpleNamespace(**{"runs": 50, "seconds": 1.0, "warmup_runs": 5,
                                    "warmup_seconds": 0.5, **options})
    first_ms, warmup, samples = agent_measure._timed_runs(SlowRuntime(clock, per_run), [],
                                                          args)
    steps = [parse(text) for text in capsys.readouterr().err.splitlines()]
    assert None not in steps  # every stderr line is a progress line
    return samples, steps, clock.now


def test_slow_runs_report_each_run_with_the_count_to_expect(monkeypatch, capsys):
    samples, steps, took = timed_runs(monkeypatch, capsys, per_run=8.7)
    assert len(samples) == 50 and took == pytest.approx(8.7 * 56)
    warm = [s for s in steps if s[0] == "warm-up"]
    timed = [s for s in steps if s[0] == "timed runs"]
    assert warm == [("warm-up", k, 5) for k in range(6)]
    assert timed == [("timed runs", k, 50) for k in range(51)]  # a line per 8.7 s run


def test_quick_loops_stay_quiet_and_fast_long_ones_write_a_line_a_second(monkeypatch, capsys):
    _, steps, _ = timed_runs(monkeypatch, capsys, per_run=0.001)  # 50 runs, 1 s: quiet
    assert steps == []
    samples, steps, _ = timed_runs(monkeypatch, capsys, per_run=0.001, seconds=20.0)
    timed = [s for s in steps if s[0] == "timed runs"]
    # 20 s of 1 ms runs: the count follows the time asked, one line a second at most.
    assert len(samples) == 20_000 and 20 <= len(timed) <= 22
    assert timed[0] == ("timed runs", 0, 20_000) and timed[-1] == ("timed runs", 20_000, 20_000)


def test_a_loop_that_turns_out_long_reports_from_then_on():
    out, clock = io.StringIO(), Clock()
    report = Reporter("samples", out, clock=clock)
    for done in range(30):  # unknown pace at first, then 0.5 s a sample: 15 s in all
        report(done, 30, None if done == 0 else clock.now / done)
        clock.now += 0.5
    report(30, 30)
    shown = [parse(text) for text in out.getvalue().splitlines()]
    # 0.5 s x 30 is 15 s: long from the first pace known; then a line a second at most.
    assert shown[0] == ("samples", 1, 30) and shown[-1] == ("samples", 30, 30)
    assert len(shown) == 16


def test_the_count_to_expect_follows_the_runs_or_the_seconds_asked():
    assert expected_runs(50, 1.0, 0, 0.0, 8.7) == 50
    assert expected_runs(5, 60.0, 2, 20.0, 10.0) == 6  # 40 s left at 10 s a run
    assert expected_runs(5, 0.0, 7, 1.0, 0.0) == 7


def test_lines_that_are_not_progress_are_ignored():
    assert parse(line("timed runs", 3, 50)) == ("timed runs", 3, 50)
    for text in ["INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
                 "edgecomp-progress {broken", 'edgecomp-progress {"phase": "x", "done": -1, '
                 '"total": 2}', 'edgecomp-progress {"phase": 3, "done": 1, "total": 2}']:
        assert parse(text) is None


class Streaming:
    """A transport whose agent writes progress lines on stderr while it runs."""

    target = "sim-arm64"

    def __init__(self, lines):
        self.lines = lines

    def run_agent(self, args, *, what, stderr_line=None):
        for text in self.lines:
            stderr_line(text)
        return {"ok": True}


def test_the_host_shows_the_boards_progress_as_phase_lines():
    out, clock = io.StringIO(), Clock()
    shown = PhaseLines(out, clock=clock)

    def progress(description, done, total):
        clock.now += 8.7
        shown(description, done, total)

    board = Streaming(["INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
                       *(line("timed runs", k, 5) for k in range(6))])
    host_agent.run_agent(board, ["measure"], what="measuring", progress=progress,
                         label="measuring m.tflite")
    lines = out.getvalue().splitlines()
    assert lines[0] == "measuring m.tflite: timed runs: started (5 steps)"
    assert lines[1] == "measuring m.tflite: timed runs: step 2/5 after 17.4 s, " \
                       "about 26.1 s left"
    assert lines[-1] == "measuring m.tflite: timed runs: done in 43.5 s"


@pytest.mark.slow
def test_a_long_measurement_streams_its_progress_while_it_runs(onnx_model):
    """Through the local transport: the lines arrive as the agent writes them, not when
    it ends, at most about one a second, and the last counts every timed run."""
    from edgecomp.remote.local import LocalTransport

    arrived = []

    def seen(text):
        step = parse(text)
        if step is not None:
            arrived.append((time.monotonic(), step))

    start = time.monotonic()
    with LocalTransport() as board:
        report = board.run_agent(["measure", str(onnx_model), "--runs", "1", "--seconds",
                                  "10.5", "--warmup-runs", "0", "--warmup-seconds", "0"],
                                 what="measuring", stderr_line=seen)
    took = time.monotonic() - start
    timed = [(at, step) for at, step in arrived if step[0] == "timed runs"]
    assert took > 10.5 and timed[0][0] - start < took - 8  # the first came early
    assert 10 <= len(timed) <= 13
    count = len(report["samples_ms"])
    assert timed[-1][1] == ("timed runs", count, count)
    assert [step[1] for _, step in timed] == sorted(step[1] for _, step in timed)


def test_a_line_split_across_ssh_chunks_arrives_whole_and_once():
    from edgecomp.remote.ssh_link import complete_lines

    whole = (line("timed runs", 1, 5) + "\n" + line("timed runs", 2, 5) + "\n").encode()
    buffer, shown, got = bytearray(), 0, []
    for chunk in (whole[:10], whole[10:60], whole[60:-1], whole[-1:]):
        buffer += chunk
        lines, shown = complete_lines(buffer, shown)
        got += [parse(text) for text in lines]
    assert got == [("timed runs", 1, 5), ("timed runs", 2, 5)] and shown == len(whole)


def test_a_transport_without_stderr_line_runs_the_agent_without_live_progress():
    class Older:
        target = "old"

        def run_agent(self, args, *, what):
            return {"ok": True, "args": list(args)}

    shown = []
    answer = host_agent.run_agent(Older(), ["info"], what="reading", label="x",
                                  progress=lambda *step: shown.append(step))
    assert answer == {"ok": True, "args": ["info"]} and shown == []
