"""The comparison table: every artifact's latest result with its speedup over fp32."""

from __future__ import annotations

from dataclasses import dataclass

from edgecomp.results.record import ResultRecord


@dataclass(frozen=True)
class ComparisonRow:
    """One line of `edgecomp compare`."""

    record: ResultRecord
    # fp32 p50 of the same model, target and format over this p50: from the interleaved
    # timing of the same run where there is one (`p50_ratio`), else the separate runs.
    speedup: float | None
    size_ratio: float | None  # this size over that fp32 artifact's size
    # The same artifact in the baseline (`compare --baseline SPEC`), where there is one.
    baseline: ResultRecord | None = None

    def change(self, field: str) -> float | None:
        """Relative change of a latency field ("p50", "p90") or of the size against the
        baseline: +0.25 is 25 % more. None without a baseline or numbers on both sides."""
        base, now = self.baseline, self.record
        if base is None or not base.ok or not now.ok:
            return None
        if field == "size":
            old, new = base.size_bytes, now.size_bytes
        else:
            old, new = getattr(base.latency_ms, field), getattr(now.latency_ms, field)
        return (new - old) / old if old else None

    def accuracy_change(self) -> float | None:
        """Points of accuracy (with labels) or else of agreement gained since the baseline."""
        base, now = self.baseline, self.record
        if base is None:
            return None
        if base.accuracy is not None and now.accuracy is not None:
            return now.accuracy - base.accuracy
        old, new = base.decision, now.decision
        return new - old if old is not None and new is not None else None


def artifact_key(record: ResultRecord) -> tuple:
    """What makes two records the same artifact: (model, technique, target, format,
    precision, I/O dtype)."""
    io = record.manifest.get("io_dtype", "float32")
    return (record.model, record.technique, record.target, record.format, record.precision, io)


def latest(records: list[ResultRecord]) -> list[ResultRecord]:
    """The newest record of each (model, technique, target, format, precision, I/O) artifact."""
    newest: dict[tuple, ResultRecord] = {}
    for record in records:
        newest[artifact_key(record)] = record  # records arrive oldest first
    return list(newest.values())


def compare_rows(records: list[ResultRecord], *, history: bool = False,
                 baseline: list[ResultRecord] | None = None) -> list[ComparisonRow]:
    """Rows grouped by model and target, fastest first, each against its fp32 baseline
    and, given `baseline` records (e.g. a tagged run), against the same artifact there
    (the newest of each)."""
    chosen = records if history else latest(records)
    before = {artifact_key(record): record for record in latest(baseline)} if baseline else {}
    baselines: dict[tuple, ResultRecord] = {}
    for record in chosen:
        if record.precision == "fp32" and record.technique in ("none", "") and record.ok:
            baselines[(record.model, record.target, record.format)] = record
    rows = []
    for record in chosen:
        base = baselines.get((record.model, record.target, record.format))
        speedup = size_ratio = None
        if record.ok and record.p50_ratio:
            speedup = 1.0 / record.p50_ratio  # timed interleaved with its fp32 twin
        elif base is not None and record.ok:
            speedup = base.latency_ms.p50 / record.latency_ms.p50
        if base is not None and record.ok:
            size_ratio = record.size_bytes / base.size_bytes
        rows.append(ComparisonRow(record=record, speedup=speedup, size_ratio=size_ratio,
                                  baseline=before.get(artifact_key(record))))
    rows.sort(key=lambda r: (r.record.model, r.record.target,
                             r.record.latency_ms.p50 if r.record.ok else float("inf")))
    return rows


@dataclass(frozen=True)
class AcrossBoards:
    """One artifact on several boards: its newest record on each (None where it was not
    measured there)."""

    model: str
    technique: str
    format: str
    precision: str
    io_dtype: str
    on: dict[str, ResultRecord | None]

    @property
    def same_build(self) -> bool:
        """True when every board ran the very same file (one sha256)."""
        shas = {r.artifact_sha256 for r in self.on.values() if r is not None}
        return len(shas) <= 1


def across_boards(records: list[ResultRecord]) -> tuple[list[str], list[AcrossBoards]]:
    """The targets, and for each artifact measured on more than one of them its newest
    record on each, side by side (empty when the records hold only one target)."""
    newest = latest(records)
    targets = sorted({r.target for r in newest})
    if len(targets) < 2:
        return targets, []
    by_artifact: dict[tuple, dict[str, ResultRecord]] = {}
    for record in newest:
        key = artifact_key(record)
        by_artifact.setdefault(key[:2] + key[3:], {})[record.target] = record
    rows = [AcrossBoards(model=key[0], technique=key[1], format=key[2], precision=key[3],
                         io_dtype=key[4], on={t: found.get(t) for t in targets})
            for key, found in by_artifact.items() if len(found) > 1]
    rows.sort(key=lambda row: (row.model, row.technique, row.format, row.precision))
    return targets, rows
