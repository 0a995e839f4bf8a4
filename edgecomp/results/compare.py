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


def _key(record: ResultRecord) -> tuple:
    io = record.manifest.get("io_dtype", "float32")
    return (record.model, record.technique, record.target, record.format, record.precision, io)


def latest(records: list[ResultRecord]) -> list[ResultRecord]:
    """The newest record of each (model, technique, target, format, precision, I/O) artifact."""
    newest: dict[tuple, ResultRecord] = {}
    for record in records:
        newest[_key(record)] = record  # records arrive oldest first
    return list(newest.values())


def compare_rows(records: list[ResultRecord], *, history: bool = False) -> list[ComparisonRow]:
    """Rows grouped by model and target, fastest first, each against its fp32 baseline."""
    chosen = records if history else latest(records)
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
        rows.append(ComparisonRow(record=record, speedup=speedup, size_ratio=size_ratio))
    rows.sort(key=lambda r: (r.record.model, r.record.target,
                             r.record.latency_ms.p50 if r.record.ok else float("inf")))
    return rows
