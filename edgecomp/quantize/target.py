"""What an int8 (or otherwise compressed) artifact must reach against the float model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
