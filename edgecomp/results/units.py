"""Numbers as tables print them: durations in units a person reads at a glance (`18 µs`,
`850 µs`, `1.25 ms`), sizes (`103.9 KiB`) and ratios (`2.40x`), the same in every table,
on the terminal and in the report."""

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


def size_text(size: int | None) -> str:
    """A file's size in KiB below 1 MiB, else in MiB ("–" for None)."""
    if size is None:
        return "–"
    return f"{size / 1024:.1f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.2f} MiB"
