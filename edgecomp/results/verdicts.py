"""What a gate judges with and concludes: the thresholds of gate.toml (`GateConfig`) and each
check's verdict with the numbers behind it (`Check`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

from pydantic import Field, StrictFloat, StrictInt
from pydantic.dataclasses import dataclass as schema

from edgecomp.config import SCHEMA, load_toml, validate
from edgecomp.results.stability import MAX_DRIFT, MAX_TAIL_RATIO, MIN_SAMPLES
from edgecomp.vocab import Vocabulary


Share = Annotated[StrictFloat, Field(ge=0, le=100, allow_inf_nan=False)]  # 0.15 is 15 %


Tolerance = Annotated[StrictFloat, Field(gt=0, le=100, allow_inf_nan=False)]


@schema(frozen=True, config=SCHEMA)
class LatencyLimits:
    max_increase: Tolerance = 0.25  # p50 of the candidate over the baseline's, minus one
    max_increase_p90: Tolerance = 0.40  # the same for p90 (tails move more between runs)
    alpha: Annotated[StrictFloat, Field(gt=0, le=0.5, allow_inf_nan=False)] = 0.01


@schema(frozen=True, config=SCHEMA)
class AccuracyLimits:
    max_drop: Annotated[StrictFloat, Field(ge=0, le=100, allow_inf_nan=False)] = 0.5  # points
    max_cosine_drop: Annotated[StrictFloat, Field(ge=0, le=2, allow_inf_nan=False)] = 0.002


@schema(frozen=True, config=SCHEMA)
class GrowthLimit:
    max_increase: Share


@schema(frozen=True, config=SCHEMA)
class StabilityLimits:
    min_samples: Annotated[StrictInt, Field(ge=2, le=10**9)] = MIN_SAMPLES
    max_tail_ratio: Annotated[StrictFloat, Field(ge=1, le=1000, allow_inf_nan=False)] = \
        MAX_TAIL_RATIO
    max_drift: Tolerance = MAX_DRIFT


@schema(frozen=True, config=SCHEMA)
class GateConfig:
    """Thresholds of `edgecomp gate`, as read from gate.toml (every key optional)."""

    latency: LatencyLimits = field(default_factory=LatencyLimits)
    accuracy: AccuracyLimits = field(default_factory=AccuracyLimits)
    size: GrowthLimit = field(default_factory=lambda: GrowthLimit(max_increase=0.05))
    memory: GrowthLimit = field(default_factory=lambda: GrowthLimit(max_increase=0.25))
    energy: GrowthLimit = field(default_factory=lambda: GrowthLimit(max_increase=0.15))
    stability: StabilityLimits = field(default_factory=StabilityLimits)


def load_config(path: Path | None, overrides: dict[str, tuple[str, str, float]]) -> GateConfig:
    """gate.toml (defaults without one) with command-line values on top: `overrides` maps
    a flag's name to (section, key, value). Errors name the file or the flag and the key."""
    config = load_toml(Path(path), GateConfig) if path is not None else GateConfig()
    for flag, (section, key, value) in overrides.items():
        validate({section: {key: value}}, GateConfig, source=flag)
        limits = replace(getattr(config, section), **{key: value})
        config = replace(config, **{section: limits})
    return config


class Verdict(Vocabulary):
    """What one check concluded; `status` says what it does to the exit status."""

    PASS = "pass"
    FAIL = "fail"
    UNSTABLE = "unstable"  # a run's own samples too spread, too few, or throttled
    INCONCLUSIVE = "inconclusive"  # the interval straddles the limit
    MISSING = "missing"  # not measured, failed, or without raw samples in the candidate
    NOT_MEASURED = "not measured"  # a number the baseline has and the candidate lacks
    NEW = "new"  # an artifact without a baseline
    CHANGED = "changed"  # a note: the model of this name has other content than the baseline's

    @property
    def status(self) -> int:
        if self is Verdict.FAIL:
            return 1
        return 2 if self in (Verdict.UNSTABLE, Verdict.INCONCLUSIVE, Verdict.MISSING) else 0


@dataclass(frozen=True)
class Check:
    """One artifact's one check, with the numbers behind its verdict."""

    artifact: str  # the artifact's identity as text
    name: str  # "latency p50", "size", ...
    verdict: Verdict
    message: str  # one sentence with the numbers
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # relative (+0.25 is 25 % more) or, in "pts", points
    unit: str = ""
    limit: float | None = None
    interval: tuple[float, float] | None = None  # of the change
    p_value: float | None = None
    # latency: the change of the median over each run's agent processes (gate step 3)
    across_runs: float | None = None

    def shown(self, value: float | None) -> str:
        """The baseline's or the candidate's number as text, with its unit."""
        if value is None:
            return "-"
        if self.unit == "bytes":
            return f"{value / 1024:.1f} KiB" if value < 1 << 20 else f"{value / (1 << 20):.2f} MiB"
        if self.unit == "":
            return f"{value:.4f}"
        return f"{value:.4g} {self.unit}"

    def shown_change(self) -> str:
        """The change as text: relative for latency, size, memory and energy, points of
        accuracy or agreement, the difference of a cosine."""
        if self.change is None:
            return "-"
        if self.unit == "%":
            return f"{self.change:+.2f} pts"
        return f"{self.change:+.4f}" if self.unit == "" else f"{self.change:+.1%}"
