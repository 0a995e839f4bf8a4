"""Energy integration on recorded power readings at fixed times: sums, not wall clocks."""

from __future__ import annotations

import pytest

from edgecomp.agent.energy import integrate_energy_j

# Jetson Nano input-rail readings in watts (tegrastats POM_5V_IN), idle and under load.
IDLE_W = [2.138, 2.142, 2.131, 2.150, 2.138, 2.127, 2.145, 2.139]
BUSY_W = [4.602, 5.118, 5.367, 5.284, 5.412, 5.196, 5.330, 5.251, 4.987, 5.402]


def test_trapezoid_over_recorded_readings():
    idle_w = sum(IDLE_W) / len(IDLE_W)
    samples = [(i * 0.02, w) for i, w in enumerate(BUSY_W)]
    expected = sum(((a - idle_w) + (b - idle_w)) / 2 * 0.02 for a, b in zip(BUSY_W, BUSY_W[1:]))
    assert integrate_energy_j(samples, idle_w) == pytest.approx(expected)
    # Uneven sampling weighs each interval by its length.
    uneven = [(0.0, 3.0), (0.01, 3.0), (0.05, 5.0)]
    assert integrate_energy_j(uneven, 1.0) == pytest.approx(2.0 * 0.01 + 3.0 * 0.04)


def test_constant_power_at_idle_is_no_energy():
    assert integrate_energy_j([(t * 0.01, 2.5) for t in range(50)], 2.5) == 0.0
    assert integrate_energy_j([(0.0, 9.0)], 1.0) == 0.0
