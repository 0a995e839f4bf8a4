"""Latency statistics agree with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from edgecomp.agent.stats import latency_stats


def test_statistics_match_numpy():
    rng = np.random.default_rng(3)
    samples = list(rng.gamma(2.0, 1.5, size=1001))
    stats = latency_stats(samples)
    assert stats.p50 == pytest.approx(np.percentile(samples, 50))
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.p99 == pytest.approx(np.percentile(samples, 99))
    assert stats.mean == pytest.approx(np.mean(samples))
    assert stats.std == pytest.approx(np.std(samples))
    assert stats.count == 1001
    assert latency_stats([2.0]).p99 == 2.0
