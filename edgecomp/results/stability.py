"""How far a timing can be trusted: the stability figure of a measured artifact.

One definition, used where an artifact is measured (stored in its record, shown in the
tables and the report, warned about) and where `edgecomp gate` decides whether a run can be
judged at all (`gate.instability`).

Over one measurement's timed samples:

- **spread**: p90 over p50. Quantiles, not max/min or the standard deviation, so that one
  stray iteration does not decide it; and the upper tail, because noise on a board only
  ever slows iterations down: another process taking a core makes a share of them several
  times slower. A quiet board gives 1.0x to 1.2x; limit 1.5x.
- **drift**: the largest over the smallest median of ten consecutive segments, minus one:
  a burst of load that shifts part of the run rather than widening all of it. Limit 10 %.
- **samples**: at least 20.
- **load**: the board's 1-minute load average when the timing started, against its online
  cores. It is context more than proof (it lags: it still counts the minute before), so
  it is a reason only when it exceeds the cores: more runnable threads than CPUs.
- **throttled**: the agent saw throttle flags or the throttle temperature.

Timed in interleaved rounds (A/B/A/B, then B/A/B/A: `deploy`, `bench` of several artifacts or
`--repeat`), an artifact also gets each round's p50 and p90 and, compared with another
artifact, each round's ratio of the two p50s. Both sides of a round share the board's
conditions, so the spread of the per-round ratios (largest over smallest, minus one) says how
precise the ratio is; above 10 % the range of the rounds is shown beside it. An artifact timed
alone in rounds is judged by the spread of its round p50s instead. Each round runs in an agent
process of its own, so the rounds are also a check on the measurement: a measurement whose p50
lies more than 10 % from the median of its rounds' ran under conditions of its own (a burst of
load for just that while, or something of that one process), and the distribution it recorded
is not the artifact's usual one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from edgecomp.results.units import duration_text

MIN_SAMPLES = 20
MAX_TAIL_RATIO = 1.5  # p90 / p50
MAX_DRIFT = 0.10  # between the medians of a run's tenths
MAX_ROUND_SPREAD = 0.10  # between per-round ratios (or per-round p50s of a lone artifact)
MAX_LOAD_PER_CORE = 1.0  # 1-minute load average over online cores


def segment_drift(samples: Sequence[float], *, segments: int = 10,
                  per_segment: int = 20) -> float:
    """The largest over the smallest median of consecutive segments, minus one (fewer
    segments for short runs, so each has `per_segment` samples; 0 when under two)."""
    import numpy as np

    values = np.asarray(samples, dtype=float)
    count = min(segments, len(values) // per_segment)
    if count < 2:
        return 0.0
    medians = [float(np.median(part)) for part in np.array_split(values, count)]
    return max(medians) / min(medians) - 1 if min(medians) > 0 else math.inf


def sample_reasons(samples: Sequence[float], *, min_samples: int = MIN_SAMPLES,
                   max_tail_ratio: float = MAX_TAIL_RATIO,
                   max_drift: float = MAX_DRIFT) -> list[str]:
    """Why these timed samples are too few or too spread to trust (empty when they are
    fine); the first reason found ends the list, as later ones would not be meaningful."""
    import numpy as np

    values = np.asarray(samples, dtype=float)
    if len(values) < min_samples:
        return [f"{len(values)} samples, fewer than {min_samples}"]
    p50, p90 = np.quantile(values, [0.5, 0.9])
    if p50 <= 0:
        return ["its median latency is not positive"]
    if p90 > max_tail_ratio * p50:
        return [f"p90 is {beyond(p90 / p50, max_tail_ratio, unit='x')} p50, above the "
                f"{limit_text(max_tail_ratio, 'x')} limit"]
    drift = segment_drift(values)
    if drift > max_drift:
        return [f"the medians of its tenths differ by {above(drift, max_drift)}"]
    return []


def above(value: float, limit: float, *, unit: str = "%") -> str:
    """A value beyond its limit, with the digits it takes to read as beyond it, and the
    limit: "10.4%, above the 10% limit" (never "10% (limit 10%)"; equal is within)."""
    return f"{beyond(value, limit, unit=unit)}, above the {limit_text(limit, unit)} limit"


def beyond(value: float, limit: float, *, unit: str = "%") -> str:
    """`value` (more than `limit`) with as many decimals as it takes to show more."""
    scale = 100 if unit == "%" else 1
    for digits in range(0 if unit == "%" else 2, 7):
        if round(value * scale, digits) > limit * scale:
            break
    return f"{value * scale:.{digits}f}{unit}"


def limit_text(limit: float, unit: str = "%") -> str:
    return f"{limit * (100 if unit == '%' else 1):g}{unit}"


def round_spread(values: Sequence[float]) -> float | None:
    """Largest over smallest of per-round values, minus one; None under two rounds."""
    if len(values) < 2 or min(values) <= 0:
        return None
    return max(values) / min(values) - 1


@dataclass(frozen=True)
class Stability:
    """How one artifact was timed and how stable that timing was (module doc)."""

    samples: int  # timed runs of the measurement
    timed_s: float  # seconds those runs took together
    spread: float | None  # p90 / p50
    drift: float | None  # medians of the run's tenths, largest over smallest, minus one
    load: float | None  # 1-minute load average when the timing started
    cores: int | None  # the board's online cores
    throttled: bool | None  # None where the board tells neither flags nor temperatures
    rounds: int = 0  # interleaved rounds it was also timed in (0: none)
    round_s: float | None = None  # timed seconds asked for per round
    rounds_timed_s: float | None = None  # seconds its timed runs took over all rounds
    round_p50s: list[float] = field(default_factory=list)  # its p50 in each round, ms
    round_p90s: list[float] = field(default_factory=list)  # its p90 in each round, ms
    ratio_to: str | None = None  # the artifact its per-round ratios are over
    ratios: list[float] = field(default_factory=list)  # its p50 over ratio_to's, per round
    repeat: int | None = None  # --repeat as given (None: the default rounds)
    min_time: float | None = None  # --min-time as given, seconds
    reasons: list[str] = field(default_factory=list)  # why it is unstable; empty: stable

    @property
    def stable(self) -> bool:
        return not self.reasons

    @property
    def load_per_core(self) -> float | None:
        return self.load / self.cores if self.load is not None and self.cores else None

    @property
    def ratio_range(self) -> tuple[float, float] | None:
        """The smallest and largest per-round ratio, where it was timed in two rounds or more."""
        return (min(self.ratios), max(self.ratios)) if len(self.ratios) >= 2 else None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Stability":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def measured(samples: Sequence[float], device: dict[str, Any]) -> Stability:
    """The figure of one measurement: its timed samples and the board's state as the agent
    reported it (the record's `device` facts)."""
    import numpy as np

    values = np.asarray(samples, dtype=float)
    spread = drift = None
    if len(values):
        p50, p90 = np.quantile(values, [0.5, 0.9])
        spread = round(float(p90 / p50), 4) if p50 > 0 else None
        drift = round(float(segment_drift(values)), 4)
    before = device.get("device_before") or {}
    load = before.get("load_avg")
    figure = Stability(samples=len(values), timed_s=round(float(values.sum()) / 1000.0, 4),
                       spread=spread, drift=drift, load=load[0] if load else None,
                       cores=before.get("online_cores") or before.get("cores"),
                       throttled=device.get("throttled_during"))
    return judged(figure, samples)


def off_rounds(own: float, rounds: Sequence[float]) -> float | None:
    """How far a measurement's statistic lies from the median of its rounds' (each timed in
    a process of its own), relative, where that is beyond MAX_ROUND_SPREAD; None when it is
    not or there are fewer than two rounds to tell."""
    import numpy as np

    if len(rounds) < 2:
        return None
    middle = float(np.median(rounds))
    if middle <= 0 or abs(own / middle - 1) <= MAX_ROUND_SPREAD:
        return None
    return own / middle - 1


def measurement_off_rounds(samples: Sequence[float], round_p50s: Sequence[float]) -> str | None:
    """Why the measurement's own p50 is out of line with its rounds', or None (`off_rounds`)."""
    import numpy as np

    if not len(samples):
        return None
    own = float(np.median(samples))
    if (off := off_rounds(own, round_p50s)) is None:
        return None
    return (f"its measurement's p50, {duration_text(own)}, is {'+' if off > 0 else '-'}"
            f"{beyond(abs(off), MAX_ROUND_SPREAD)} off the median of its {len(round_p50s)} "
            f"rounds' ({duration_text(float(np.median(round_p50s)))}), beyond the "
            f"{limit_text(MAX_ROUND_SPREAD)} limit")


def judged(figure: Stability, samples: Sequence[float]) -> Stability:
    """The figure with its `reasons` worked out (again, once rounds were added)."""
    reasons = sample_reasons(samples)
    if (off := measurement_off_rounds(samples, figure.round_p50s)) is not None:
        reasons.append(off)
    if figure.throttled:
        reasons.append("the board throttled")
    per_core = figure.load_per_core
    if per_core is not None and per_core > MAX_LOAD_PER_CORE:
        reasons.append(f"load {figure.load:.2f} on {figure.cores} cores")
    if figure.ratio_to is not None:
        spread = round_spread(figure.ratios)
        if spread is not None and spread > MAX_ROUND_SPREAD:
            low, high = figure.ratio_range
            reasons.append(f"its speedup over {figure.ratio_to} went from {1 / high:.2f}x to "
                           f"{1 / low:.2f}x over {len(figure.ratios)} rounds, apart by "
                           f"{above(spread, MAX_ROUND_SPREAD)}")
    else:
        spread = round_spread(figure.round_p50s)
        if spread is not None and spread > MAX_ROUND_SPREAD:
            reasons.append(f"its p50 went from {duration_text(min(figure.round_p50s))} to "
                           f"{duration_text(max(figure.round_p50s))} over "
                           f"{len(figure.round_p50s)} "
                           f"rounds, apart by {above(spread, MAX_ROUND_SPREAD)}")
    return dataclasses.replace(figure, reasons=reasons)


# Advice stays within what a person would run: at most this many rounds and timed seconds
# per artifact. Past that, more time does not settle a timing: what disturbs it is the
# board (its load, its heat), and waiting longer only measures more of the same noise.
ADVICE_MAX_REPEAT = 10
ADVICE_MAX_SECONDS = 60


def warning(figure: Stability, *, artifact: str, target: str) -> str | None:
    """One line for an unstable timing: what made it so and what to do; None when stable."""
    if figure.stable:
        return None
    said = f"timing of {artifact} on {target} is unstable: {'; '.join(figure.reasons)}."
    board = []
    if figure.load_per_core is not None and figure.load_per_core > MAX_LOAD_PER_CORE:
        board.append("stop what else runs on it")
    if figure.throttled:
        board.append("let it cool or give it a fan")
    other = len(figure.reasons) > len(board)  # a reason beside the load and the heat
    timed = figure.rounds_timed_s or figure.timed_s
    if not other:
        return f"{said} Measure on a quieter board ({', '.join(board)}); timing longer " \
               "would only time more of the same disturbance."
    if timed >= ADVICE_MAX_SECONDS:
        return (f"{said} It was timed for {timed:.0f} s already, so timing longer is "
                "unlikely to help: measure on a quieter board (nothing else running, "
                "cool), then compare again.")
    repeat = min(max(figure.rounds, 3) * 2, ADVICE_MAX_REPEAT)
    seconds = min(math.ceil(max(2 * timed, 5.0)), ADVICE_MAX_SECONDS)
    return (f"{said} Measure on a quieter board, or time longer (e.g. --repeat {repeat} "
            f"--min-time {seconds}: twice the timing, at most {ADVICE_MAX_SECONDS} s per "
            "artifact).")


def spread_text(figure: Stability | None) -> str:
    """The compact table cell: p90/p50 of the timing, `!` when the timing is unstable."""
    if figure is None or figure.spread is None:
        return "-"
    return f"{figure.spread:.2f}" + ("!" if not figure.stable else "")


def load_text(figure: Stability | None) -> str:
    """The compact table cell: the 1-minute load average over the online cores, "0.6/4"."""
    if figure is None or figure.load is None:
        return "-"
    return f"{figure.load:.1f}/{figure.cores or '?'}"


def interleaved_text(speedup: float | None, figure: Stability | None) -> str:
    """The speedup over its own fp32 as the median of interleaved rounds, with the range of
    the rounds beside it where they disagree beyond the limit ("1.02x (0.93-1.10x)")."""
    if speedup is None:
        return "-"
    ratios = figure.ratio_range if figure is not None else None
    if ratios is not None and round_spread(figure.ratios) > MAX_ROUND_SPREAD:
        return f"{speedup:.2f}x ({1 / ratios[1]:.2f}-{1 / ratios[0]:.2f}x)"
    return f"{speedup:.2f}x"
