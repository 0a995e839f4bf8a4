"""Numbers as tables print them: durations in units a person reads at a glance (`18 µs`,
`850 µs`, `1.25 ms`) and ratios (`2.40x`), the same in every table (sizes:
`results.report.size_text`)."""

from __future__ import annotations


def duration_text(ms: float | None) -> str:
    """A duration given in milliseconds, with three significant digits: in µs below 1 ms,
    in s from 1000 ms ("-" for None)."""
    if ms is None:
        return "-"
    ms = float(f"{ms:.3g}")  # rounded first, so 0.9996 ms reads "1 ms", not "1e+03 µs"
    value, unit = ((ms * 1000, "µs") if ms < 1 else (ms, "ms") if ms < 1000
                   else (ms / 1000, "s"))
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"


def times_text(ratio: float | None) -> str:
    """A ratio as "x" times, with two decimals below 10 ("2.40x"), fewer above ("167x")."""
    if ratio is None:
        return "-"
    return f"{ratio:.{2 if ratio < 10 else 1 if ratio < 100 else 0}f}x"
