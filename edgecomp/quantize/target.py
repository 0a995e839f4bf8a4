"""What an int8 (or otherwise compressed) artifact must reach against the float model, and
the log of the candidates the int8 search tried (kept in the artifact's manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgecomp.errors import InputError

if TYPE_CHECKING:
    from edgecomp.results.agreement import Verification


@dataclass(frozen=True)
class AgreementTarget:
    """What an int8 artifact must reach against the float model on the evaluation set.

    `min_cosine` applies to the mean cosine of the first output; `max_top1_drop` (points)
    to top-1 accuracy when the data has labels; `min_decision` (percent of samples making
    the float model's call) when set.
    """

    min_cosine: float = 0.99
    max_top1_drop: float = 1.0
    min_decision: float | None = None

    def __post_init__(self) -> None:
        # `not` of each bound, so that NaN is refused too.
        if not 0 < self.min_cosine <= 1 or not self.max_top1_drop >= 0 or (
                self.min_decision is not None and not 0 <= self.min_decision <= 100):
            raise InputError("--min-cosine must be in (0, 1], --max-top1-drop not negative "
                             "and --min-agreement a percentage.")

    def met(self, check: Verification | None) -> bool:
        if check is None or check.agreement is None:
            return False
        agreement = check.agreement
        if agreement.cosine < self.min_cosine:
            return False
        if check.accuracy_delta is not None and -check.accuracy_delta > self.max_top1_drop:
            return False
        return self.min_decision is None or (agreement.decision or 0.0) >= self.min_decision

    def describe(self) -> str:
        parts = [f"cosine ≥ {self.min_cosine:g}", f"top-1 drop ≤ {self.max_top1_drop:g} pt"]
        if self.min_decision is not None:
            parts.append(f"same call on ≥ {self.min_decision:g} % of samples")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"min_cosine": self.min_cosine, "max_top1_drop": self.max_top1_drop,
                "min_decision": self.min_decision}


@dataclass(frozen=True)
class Tried:
    """One candidate: what it changed and what it measured."""

    name: str
    options: dict[str, Any]
    cosine: float | None = None
    cosine_min: float | None = None
    decision: float | None = None
    accuracy_delta: float | None = None
    size_bytes: int | None = None
    build_s: float | None = None
    met: bool = False
    float_layers: list[str] = field(default_factory=list)
    error: str | None = None

    def score(self) -> tuple[float, float]:
        """Better agreement first: the share of same calls, then cosine."""
        return (self.decision if self.decision is not None else -1.0,
                self.cosine if self.cosine is not None else -1.0)


@dataclass(frozen=True)
class SearchLog:
    """The int8 search behind an artifact: the target, every candidate tried, the one kept
    and whether it met the target."""

    target: AgreementTarget
    kept: str
    met: bool
    tried: tuple[Tried, ...]
