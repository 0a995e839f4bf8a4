"""Energy per inference on the simulated board, from a file probe fed with recorded readings."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from edgecomp.remote.base import MeasureOptions
from edgecomp.remote.ssh import SshTransport
from edgecomp.targets import get_target

pytestmark = pytest.mark.slow

# Jetson Nano input-rail readings in watts (tegrastats POM_5V_IN), idle and under load.
IDLE_W = [2.138, 2.142, 2.131, 2.150, 2.138, 2.127, 2.145, 2.139]
BUSY_W = [4.602, 5.118, 5.367, 5.284, 5.412, 5.196, 5.330, 5.251, 4.987, 5.402]
PERIOD = 0.02


def cpu_busy_fraction(previous):
    """System-wide CPU utilisation since `previous` (/proc/stat), and the new counters."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    idle, total = fields[3] + fields[4], sum(fields)
    if previous is None:
        return 0.0, (idle, total)
    d_idle, d_total = idle - previous[0], total - previous[1]
    return (1.0 - d_idle / d_total if d_total else 0.0), (idle, total)


def reading_at(log, t):
    """The value the file held at time t (the writer's log is a step function)."""
    value = log[0][1]
    for when, watts in log:
        if when > t:
            break
        value = watts
    return value


def integral(log, start, end, step=0.0005):
    total, t = 0.0, start
    while t < end:
        total += reading_at(log, t) * min(step, end - t)
        t += step
    return total


def test_energy_matches_an_independent_integral(board, deployed_artifact, tmp_path):
    probe_file = tmp_path / "power_w"
    log: list[tuple[float, float]] = []
    stop = threading.Event()

    def writer():
        """A sensor that follows load: recorded idle and busy readings mixed by CPU use."""
        counters, index = None, 0
        while not stop.is_set():
            busy, counters = cpu_busy_fraction(counters)
            idle_w, busy_w = IDLE_W[index % len(IDLE_W)], BUSY_W[index % len(BUSY_W)]
            value = round(idle_w + (busy_w - idle_w) * busy, 4)
            tmp = probe_file.with_suffix(".tmp")
            tmp.write_text(f"{value}\n")
            tmp.replace(probe_file)
            log.append((time.time(), value))
            index += 1
            time.sleep(PERIOD)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.2)
    try:
        target = replace(get_target(board.name), power_probe=f"file:{probe_file}")
        with SshTransport(target) as ssh:
            report = ssh.measure(deployed_artifact, MeasureOptions(
                runs=10, seconds=0.2, warmup_runs=1, warmup_seconds=0, power_seconds=1.0,
                power_idle_seconds=0.5, power_hz=100))
    finally:
        stop.set()
        thread.join()
    power = report["power"]
    assert power["probe"] == "file" and power["reason"] is None
    assert power["samples"] > 20 and power["rate_hz"] > 10
    idle_start, idle_end = power["idle_window"]
    pass_start, pass_end = power["pass_window"]
    idle = integral(log, idle_start, idle_end) / (idle_end - idle_start)
    expected_mj = (integral(log, pass_start, pass_end) - idle * (pass_end - pass_start)) \
        / power["iterations"] * 1000.0
    assert expected_mj > 0 and power["avg_w"] > power["idle_w"]
    assert power["idle_w"] == pytest.approx(idle, rel=0.05)
    assert power["energy_mj"] == pytest.approx(expected_mj, rel=0.1, abs=1e-4)


def test_without_a_probe_energy_is_null_with_a_reason(board, deployed_artifact):
    with SshTransport(get_target(board.name)) as ssh:
        report = ssh.measure(deployed_artifact, MeasureOptions(runs=5, seconds=0,
                                                               warmup_seconds=0))
    assert report["power"]["energy_mj"] is None
    assert report["power"]["reason"] == "no power sensor on this board"
