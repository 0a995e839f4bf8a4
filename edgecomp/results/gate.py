"""Regression gates: a candidate run judged against a baseline, artifact by artifact.

`judge(baseline, candidate, config)` matches records by artifact identity (model name,
technique, target, format, precision, I/O dtype; the newest record of each) and returns
one `Check` per artifact and check; `GateReport.status` folds them into the exit status:
0 pass, 1 regression, 2 could not judge. Everything here is a pure function of records.

Latency (p50 and p90, each on the evidence it has) is judged over the runs' agent
processes where both were timed in interleaved rounds, else on the two measurements' raw
samples (a Mann-Whitney test and a block-bootstrap interval of the change):
`results.gate_latency`, whose docstring gives the steps and the measurements behind the
default limits (25 % for p50, 40 % for p90).

Other checks compare single numbers where the baseline has them: accuracy (top-1 points,
else the agreement decision share) and the agreement cosine may drop by at most a limit;
size, peak memory and energy may grow by at most a share. A number the baseline has and
the candidate lacks is `not measured` (reported, not judged). Artifacts of the baseline
that the candidate lacks or failed to measure are `missing` (could not judge: a failed
measurement is usually the board or the link, and its record says which); artifacts only
the candidate has are `new`. A model is matched by its name: a candidate whose model has
other content (a new release, retrained or changed weights) is judged against the
baseline's, with a `changed` note naming both contents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgecomp.errors import InputError
from edgecomp.results.compare import SHORT_SHA, model_content, named_artifact_key
# The latency checks, with block_bootstrap and instability as importable from here as ever.
from edgecomp.results.gate_latency import latency_checks
from edgecomp.results.record import ResultRecord
from edgecomp.results.verdicts import Check, GateConfig, Verdict


@dataclass(frozen=True)
class GateReport:
    """A judged comparison, or the sentence saying why none could be made."""

    baseline: str
    candidate: str
    config: GateConfig
    checks: tuple[Check, ...] = ()
    problem: str | None = None

    @property
    def status(self) -> int:
        """0 pass, 1 any regression, 2 could not judge (and no regression)."""
        if self.problem is not None:
            return 2
        codes = {check.verdict.status for check in self.checks}
        return 1 if 1 in codes else 2 if 2 in codes else 0

    @property
    def outcome(self) -> str:
        return ("pass", "regression", "could not judge")[self.status]


def artifact_name(record: ResultRecord) -> str:
    """The identity `judge` matches on, as one line of text."""
    model, technique, target, fmt, precision, io = named_artifact_key(record)
    return f"{model} {technique} {target} {fmt} {precision}" + (
        " int8-io" if io == "int8" else "")


def judge(baseline: list[ResultRecord], candidate: list[ResultRecord], config: GateConfig, *,
          baseline_name: str = "the baseline",
          candidate_name: str = "the candidate") -> list[Check]:
    """Every check of every artifact; records arrive oldest first and the newest of each
    artifact counts (the newest successful one in the baseline)."""
    before = {named_artifact_key(r): r for r in baseline if r.ok}
    after = {named_artifact_key(r): r for r in candidate}
    if not before:
        raise InputError(f"{baseline_name} holds no successful measurement to compare with.")
    if not before.keys() & after.keys():
        raise InputError(f"{candidate_name} and {baseline_name} share no artifact (same "
                         "model, technique, target, format, precision and I/O); gate a run "
                         "of the artifacts the baseline measured.")
    checks: list[Check] = _content_notes(before, after)
    for key, base in before.items():
        now = after.get(key)
        name = artifact_name(base)
        if now is None or not now.ok:
            why = "was not measured" if now is None else f"failed: {now.error or 'no latency'}"
            checks.append(Check(name, "measured", Verdict.MISSING,
                                f"{candidate_name} {why}."))
            continue
        checks += latency_checks(base, now, config, artifact=name)
        checks += number_checks(base, now, config, artifact=name)
    for key, now in after.items():
        if key not in before:
            checks.append(Check(artifact_name(now), "measured", Verdict.NEW,
                                f"new artifact: {baseline_name} has no result for it."))
    return checks


def _content_notes(before: dict[tuple, ResultRecord],
                   after: dict[tuple, ResultRecord]) -> list[Check]:
    """One `changed` note per model whose matched artifacts have other content in the
    candidate than in the baseline."""
    changed: dict[str, tuple[str, str]] = {}
    for key, base in before.items():
        now = after.get(key)
        if now is not None and model_content(now) != model_content(base):
            changed.setdefault(base.model, (model_content(base), model_content(now)))
    return [Check(model, "model content", Verdict.CHANGED,
                  f"{model} is other content than in the baseline ({old[:SHORT_SHA]} -> "
                  f"{new[:SHORT_SHA]}): judged as a new release of the model of that name.")
            for model, (old, new) in changed.items()]


# ---------------------------------------------------------------------------------------
# Single numbers: accuracy, agreement, size, memory, energy


def number_checks(base: ResultRecord, now: ResultRecord, config: GateConfig, *,
                  artifact: str) -> list[Check]:
    """The checks on single numbers the baseline has (module doc)."""
    checks = []
    drop = config.accuracy.max_drop
    if base.accuracy is not None:
        checks.append(_drop(artifact, "accuracy", base.accuracy, now.accuracy, drop, "%"))
    elif base.decision is not None:
        checks.append(_drop(artifact, "agreement", base.decision, now.decision, drop, "%"))
    if base.agreement is not None:
        checks.append(_drop(artifact, "cosine", base.agreement.cosine,
                            now.agreement.cosine if now.agreement else None,
                            config.accuracy.max_cosine_drop, ""))
    for name, unit, limits, old, new in (
            ("size", "bytes", config.size, base.size_bytes, now.size_bytes),
            ("memory", "MB", config.memory, base.peak_rss_mb, now.peak_rss_mb),
            ("energy", "mJ", config.energy, base.energy_mj, now.energy_mj)):
        if old is not None:
            checks.append(_growth(artifact, name, old, new, limits.max_increase, unit))
    return checks


def _drop(artifact: str, name: str, old: float, new: float | None, limit: float,
          unit: str) -> Check:
    if new is None:
        return _not_measured(artifact, name, old, unit)
    change = new - old
    verdict = Verdict.FAIL if -change > limit else Verdict.PASS
    points = " points" if unit == "%" else ""
    return Check(artifact, name, verdict,
                 f"{old:.4g} -> {new:.4g}{unit} ({change:+.4g}{points}): "
                 f"{'dropped beyond' if verdict is Verdict.FAIL else 'within'} the allowed "
                 f"drop of {limit:g}{points}.",
                 baseline=old, candidate=new, change=change, unit=unit, limit=limit)


def _growth(artifact: str, name: str, old: float, new: float | None, limit: float,
            unit: str) -> Check:
    if new is None:
        return _not_measured(artifact, name, old, unit)
    change = new / old - 1 if old > 0 else (0.0 if new <= 0 else math.inf)
    verdict = Verdict.FAIL if change > limit else Verdict.PASS
    return Check(artifact, name, verdict,
                 f"{old:.6g} -> {new:.6g} {unit} ({change:+.1%}): "
                 f"{'grew beyond' if verdict is Verdict.FAIL else 'within'} the limit "
                 f"{limit:+.0%}.",
                 baseline=float(old), candidate=float(new), change=change, unit=unit,
                 limit=limit)


def _not_measured(artifact: str, name: str, old: float, unit: str) -> Check:
    return Check(artifact, name, Verdict.NOT_MEASURED,
                 f"the baseline has {old:.6g}{' ' + unit if unit else ''}, the candidate no "
                 f"{name} (measure it the same way to compare).",
                 baseline=float(old), unit=unit)
