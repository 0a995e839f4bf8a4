"""The top of the report, what a reviewer reads first: the gate's verdict when the report
comes from `edgecomp gate`, then the best artifact of each model on each board with the
reason (`results.best`), as plain values for the template, which escapes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from edgecomp.results.best import best_artifacts
from edgecomp.results.record import ResultRecord

if TYPE_CHECKING:
    from edgecomp.results.gate import GateReport

# Badge class of each gate outcome: pass, regression, could not judge.
OUTCOME_BADGES = ("good", "bad", "warn")


def _quality_text(best) -> str:
    value = best.quality.value(best.record) if best.quality else None
    if value is None:
        return "–"
    return {"accuracy": f"top-1 {value:.2f} %", "decision": f"same call {value:.1f} %"
            }.get(best.quality.key, f"cosine {value:.4f}")


def best_rows(records: Sequence[ResultRecord],
              rows: Mapping[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per model and target: its best artifact, why, and the Pareto front it
    was chosen from; `rows` are the page's artifact rows by `id` of their record."""
    out = []
    for best in best_artifacts(records):
        row = rows[id(best.record)]
        out.append({
            "model": best.model, "target": best.target, "row": row,
            "artifact": f"{best.record.format} {row['precision']} · {best.record.technique}",
            "quality": _quality_text(best),
            "speedup": f"{best.speedup:.1f}×" if best.speedup is not None else "–",
            "reason": best.reason, "close": best.close, "compared": best.compared,
            "front": [rows[id(r)] for r in best.front]})
    return out


def gate_verdict(report: GateReport | None) -> dict[str, Any] | None:
    """The gate's outcome, its counts and every check that did not pass (None: the page
    was not made by a gate)."""
    if report is None:
        return None
    from edgecomp.results.ci import verdict_counts

    return {"outcome": report.outcome, "badge": OUTCOME_BADGES[report.status],
            "status": report.status, "baseline": report.baseline,
            "candidate": report.candidate or "the candidate", "problem": report.problem,
            "counts": verdict_counts(report),
            "checks": [{"artifact": c.artifact, "name": c.name, "verdict": c.verdict.value,
                        "message": c.message, "judged": c.verdict.status != 0}
                       for c in report.checks if c.verdict.value != "pass"]}
