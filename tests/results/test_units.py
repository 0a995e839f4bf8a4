"""Durations and ratios as the tables print them."""

from __future__ import annotations

import pytest

from edgecomp.results.units import duration_text, times_text


@pytest.mark.parametrize("ms, text", [
    (0.018, "18 µs"), (0.0184, "18.4 µs"), (0.85, "850 µs"), (0.9996, "1 ms"),
    (1.25, "1.25 ms"), (125.4, "125 ms"), (1234.0, "1.23 s"), (None, "-")])
def test_durations_read_in_the_unit_that_fits(ms, text):
    assert duration_text(ms) == text


@pytest.mark.parametrize("ratio, text", [(2.4, "2.40x"), (55.56, "55.6x"), (166.67, "167x"),
                                         (None, "-")])
def test_ratios_keep_three_figures(ratio, text):
    assert times_text(ratio) == text
