"""The best artifact of each model on each board, with the reason: what a report says first.

For each model (name and content) and target, among the newest successful result of each
artifact: the Pareto front of p50 latency against quality (top-1 accuracy, else the share
of samples making the float model's call, else the output cosine: `charts.quality_of`),
and on it the fastest artifact close enough to the float model, by the int8 search's own
default target (`AgreementTarget`): within 1 point of the float model's top-1, the float
model's call on at least 99 % of samples, or an output cosine of at least 0.99. Where no
artifact is close enough, the most accurate one, saying so. The speedup is over the fp32
artifact of the same model, format and target, from the comparison table's rows
(`compare.compare_rows`): timed interleaved in the same run where it was, else the two
p50s. Pure functions of records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from edgecomp.quantize.target import AgreementTarget
from edgecomp.results.charts import Quality, pareto_front, quality_of
from edgecomp.results.compare import compare_rows, latest, model_identity, model_labels
from edgecomp.results.record import ResultRecord

TARGET = AgreementTarget()


@dataclass(frozen=True)
class Best:
    """One model's best artifact on one target, and the front it was chosen from."""

    model: str  # as the report names it (`compare.model_labels`)
    target: str
    record: ResultRecord
    quality: Quality | None  # what "accurate" meant here; None: nothing measured it
    close: bool  # within the float model's tolerance (false: the most accurate instead)
    reason: str  # one sentence: why this artifact
    speedup: float | None  # p50 of the fp32 artifact over this one's
    front: tuple[ResultRecord, ...]  # fast and accurate, fastest first
    compared: int  # artifacts it was chosen from


def is_float_baseline(record: ResultRecord) -> bool:
    """The uncompressed fp32 artifact a model's speedups are measured against."""
    return record.precision == "fp32" and record.technique in ("none", "")


def best_artifacts(records: Sequence[ResultRecord]) -> list[Best]:
    """The best artifact of every model on every target, by model and target."""
    chosen = [r for r in latest(list(records)) if r.ok]
    labels = model_labels(chosen)
    speedups = {id(row.record): row.interleaved_speedup or row.speedup
                for row in compare_rows(chosen, history=True)}
    groups: dict[tuple[str, str], list[ResultRecord]] = {}
    for record in chosen:
        groups.setdefault((labels[model_identity(record)], record.target), []).append(record)
    return [_best(model, target, members, speedups)
            for (model, target), members in sorted(groups.items())]


def _best(model: str, target: str, members: list[ResultRecord],
          speedups: dict[int, float | None]) -> Best:
    quality = quality_of(members)
    rated = [r for r in members if quality and quality.value(r) is not None]
    if not rated:
        pick = min(members, key=lambda r: r.latency_ms.p50)
        speedup = speedups[id(pick)]
        return Best(model, target, pick, None, False,
                    _sentence("the fastest artifact; nothing measured its accuracy or "
                              "agreement", pick, speedup), speedup, (), len(members))
    points = [(r.latency_ms.p50, quality.value(r)) for r in rated]
    front = sorted((rated[i] for i in pareto_front(points)),
                   key=lambda r: (r.latency_ms.p50, -quality.value(r)))
    bar, bar_text = _tolerance(quality, members)
    close = [r for r in front if quality.value(r) >= bar]
    if close:
        pick, why = close[0], f"the fastest artifact {bar_text}"
    else:
        pick = max(front, key=lambda r: (quality.value(r), -r.latency_ms.p50))
        why = f"no artifact is {bar_text}; the most accurate one"
    speedup = speedups[id(pick)]
    return Best(model, target, pick, quality, bool(close), _sentence(why, pick, speedup),
                speedup, tuple(front), len(members))


def _tolerance(quality: Quality, members: list[ResultRecord]) -> tuple[float, str]:
    """The lowest quality still close to the float model, and how to say it."""
    if quality.key == "accuracy":
        drop = TARGET.max_top1_drop
        within = f"within {drop:g} point{'s' * (drop != 1)} of"
        reference = _float_accuracy(members)
        if reference is not None:
            return reference - drop, f"{within} the float model's top-1 ({reference:.2f} %)"
        best = max(quality.value(r) for r in members if quality.value(r) is not None)
        return best - drop, f"{within} the best top-1 here ({best:.2f} %)"
    if quality.key == "decision":
        share = 100 - TARGET.max_top1_drop
        return share, f"making the float model's call on ≥ {share:g} % of samples"
    return TARGET.min_cosine, f"with output cosine ≥ {TARGET.min_cosine:g} to the float model"


def _float_accuracy(members: list[ResultRecord]) -> float | None:
    """The float model's top-1: as the results measured it, else its fp32 artifact's."""
    measured = [r.float_accuracy for r in members if r.float_accuracy is not None]
    if measured:
        return measured[-1]
    base = [r.accuracy for r in members if is_float_baseline(r) and r.accuracy is not None]
    return base[-1] if base else None


def _sentence(why: str, pick: ResultRecord, speedup: float | None) -> str:
    if is_float_baseline(pick):
        return f"{why}: the fp32 artifact itself (nothing compressed beats it)."
    if speedup is None:
        return f"{why} (no fp32 {pick.format} result here to compare its speed with)."
    if speedup >= 1:
        return f"{why}; {speedup:.1f}× faster than fp32."
    return f"{why}; {1 / speedup:.1f}× slower than fp32."
