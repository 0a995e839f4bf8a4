"""Energy per inference on the simulated board, from a file probe fed with recorded readings.

The sensor here holds one recorded reading while the agent measures, so every expected
number follows from sample counts and sums, never from racing the agent's clock.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.remote.ssh import SshTransport
from edgecomp.hardware.targets import get_target
from edgecomp.pipeline import agent

pytestmark = pytest.mark.slow

# A Jetson Nano input-rail reading in watts (tegrastats POM_5V_IN) under load.
BUSY_W = 5.118
OPTIONS = MeasureOptions(runs=10, seconds=0.2, warmup_runs=1, warmup_seconds=0,
                         power_seconds=1.0, power_idle_seconds=0.5, power_hz=100)


def test_energy_from_a_steady_reading_is_its_samples_sum(board, deployed_artifact, tmp_path):
    probe_file = tmp_path / "power_w"
    probe_file.write_text(f"{BUSY_W}\n")
    target = replace(get_target(board.name), power_probe=f"file:{probe_file}")
    with SshTransport(target) as ssh:
        power = agent.measure(ssh, deployed_artifact, OPTIONS).power
    assert power.probe == "file" and power.reason is None
    # Every reading was BUSY_W: the means are exact, and nothing rose above idle.
    assert power.idle_w == pytest.approx(BUSY_W) and power.avg_w == pytest.approx(BUSY_W)
    assert power.energy_mj == pytest.approx(0.0, abs=1e-9)
    # At 100 Hz (minus read and scheduling time) over 0.5 s idle and a 1 s pass.
    assert 5 <= power.idle_samples <= 51 and 10 <= power.samples <= 101
    assert power.iterations > 0 and power.seconds >= 1.0
    assert 0 < power.rate_hz <= 110
    idle_start, idle_end = power.idle_window
    pass_start, pass_end = power.pass_window
    assert idle_end - idle_start >= 0.5 and idle_end <= pass_start < pass_end


def test_a_sensor_that_disappears_is_a_reason_not_a_crash(board, deployed_artifact, tmp_path):
    target = replace(get_target(board.name), power_probe=f"file:{tmp_path / 'gone'}")
    with SshTransport(target) as ssh:
        report = agent.measure(ssh, deployed_artifact, OPTIONS)
    assert report.latency_ms.count >= 10
    assert report.power.energy_mj is None and "gone" in report.power.reason


def test_without_a_probe_energy_is_null_with_a_reason(board, deployed_artifact):
    with SshTransport(get_target(board.name)) as ssh:
        report = agent.measure(ssh, deployed_artifact, MeasureOptions(runs=5, seconds=0,
                                                               warmup_seconds=0))
    assert report.power.energy_mj is None
    assert report.power.reason == "no power sensor on this board"
