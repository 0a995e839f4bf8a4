"""The comparison table: every artifact's latest result with its speedup over the
original model's fp32.

A model is its name and its content: two different models that share a name (two files'
factories both called `make`) stay apart, and a speedup or an fp32 baseline is never taken
across them. Tables name a model by its name, with `@` and the start of its content's
sha256 where the rows hold several models of that name (`make @1a2b3c4`). Gates and
`--baseline` match releases by name alone: a new release of a model is new content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from edgecomp.results.record import ResultRecord


@dataclass(frozen=True)
class ComparisonRow:
    """One line of `edgecomp compare`."""

    record: ResultRecord
    # The original model's fp32 p50 over this p50: the uncompressed fp32 artifact of the
    # same model, target and format (the table's speedup: the ratio of the p50s it shows).
    speedup: float | None
    size_ratio: float | None  # this shipped size over that fp32 artifact's
    # The same artifact in the baseline (`compare --baseline SPEC`), where there is one.
    baseline: ResultRecord | None = None
    model: str = ""  # the model as the table names it (see `model_labels`)
    earlier: bool = False  # from an earlier run than the newest one among the rows
    # The fp32 p50 of its own technique (a recipe's fp32 artifact) over this p50.
    own_speedup: float | None = None

    @property
    def interleaved_speedup(self) -> float | None:
        """Its own fp32's p50 over this p50 as the median of interleaved rounds (A/B/A/B)
        timed in the same run, where there were such rounds."""
        ratio = self.record.p50_ratio
        return 1.0 / ratio if self.record.ok and ratio else None

    def speedups_json(self) -> dict[str, Any]:
        """The row's speedups and shipped size, named for `--json` and `--csv`."""
        figure = self.record.stability
        span = figure.ratio_range if figure is not None else None
        return {"speedup_vs_original_fp32": self.speedup,
                "speedup_vs_own_fp32": self.own_speedup,
                "interleaved_speedup_vs_own_fp32": self.interleaved_speedup,
                "interleaved_speedup_range": None if span is None else
                [1 / span[1], 1 / span[0]],
                "shipped_size_bytes": shipped_bytes(self.record)}

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


def model_content(record: ResultRecord) -> str:
    """What a model is, beyond its name: the sha256 of the model as the user gave it (a
    recipe's artifacts share their uncompressed model's; someone else's artifact without a
    manifest is its own model), else, for records made before manifests said so, of the
    artifact's source."""
    return record.manifest.model_sha256 or record.source_sha256


def model_identity(record: ResultRecord) -> tuple[str, str]:
    """A model's identity: (name, content)."""
    return record.model, model_content(record)


def artifact_key(record: ResultRecord) -> tuple:
    """What makes two records the same artifact: (model, content, technique, target,
    format, precision, I/O dtype)."""
    return (*model_identity(record), *named_artifact_key(record)[1:])


def named_artifact_key(record: ResultRecord) -> tuple:
    """The same artifact of any release of a model of this name: (model, technique,
    target, format, precision, I/O dtype), what gates and baselines match on."""
    io = record.manifest.io_dtype
    return (record.model, record.technique, record.target, record.format, record.precision, io)


SHORT_SHA = 7  # hex digits of a model's content shown beside its name, like git's


def model_labels(records: list[ResultRecord]) -> dict[tuple[str, str], str]:
    """Each model's name in tables, by identity: the name alone where one content carries
    it, else the name and enough of each content to tell them apart (`make @1a2b3c4`)."""
    labels = {}
    for name, shas in _contents(records).items():
        if len(shas) == 1:
            labels[(name, *shas)] = name
            continue
        width = SHORT_SHA
        while len({sha[:width] for sha in shas}) < len(shas):
            width += 1
        labels.update({(name, sha): f"{name} @{sha[:width]}" for sha in shas})
    return labels


def _contents(records: list[ResultRecord]) -> dict[str, set[str]]:
    """The contents each model name carries among the records."""
    contents: dict[str, set[str]] = {}
    for record in records:
        contents.setdefault(record.model, set()).add(model_content(record))
    return contents


def latest(records: list[ResultRecord]) -> list[ResultRecord]:
    """The newest record of each artifact (`artifact_key`)."""
    newest: dict[tuple, ResultRecord] = {}
    for record in records:
        newest[artifact_key(record)] = record  # records arrive oldest first
    return list(newest.values())


def newest_run(records: list[ResultRecord]) -> str | None:
    """The run of the most recent record (None when no record has a stored run)."""
    stored = [r for r in records if r.run_id]
    return max(stored, key=lambda r: r.created_at).run_id if stored else None


def compare_rows(records: list[ResultRecord], *, history: bool = False,
                 baseline: list[ResultRecord] | None = None,
                 current_run: str | None = None) -> list[ComparisonRow]:
    """Rows grouped by model and target, fastest first, each against the original fp32
    artifact of the same model (name and content), target and format (and its own
    technique's fp32) and, given `baseline` records (e.g. a tagged run),
    against the same artifact there (the newest of each, matched by name). Rows from
    another run than `current_run` (default: the newest among them) are `earlier`."""
    chosen = records if history else latest(records)
    before = _baseline_of(chosen, baseline or [])
    fp32: dict[tuple, ResultRecord] = {}
    for record in chosen:
        if record.precision == "fp32" and record.ok:
            fp32[(model_identity(record), record.technique or "none", record.target,
                  record.format)] = record
    labels = model_labels(chosen)
    current = current_run or newest_run(chosen)
    rows = []
    for record in chosen:
        where = (model_identity(record), record.target, record.format)
        original = fp32.get((where[0], "none", *where[1:]))
        own = fp32.get((where[0], record.technique or "none", *where[1:]))
        rows.append(ComparisonRow(
            record=record, speedup=_p50_over(original, record),
            size_ratio=(shipped_bytes(record) / shipped_bytes(original)
                        if original is not None and record.ok else None),
            baseline=before(record),
            model=labels[model_identity(record)],
            earlier=bool(current and record.run_id and record.run_id != current),
            own_speedup=_p50_over(own, record)))
    rows.sort(key=lambda r: (r.model, r.record.target,
                             r.record.latency_ms.p50 if r.record.ok else float("inf")))
    return rows


def _p50_over(reference: ResultRecord | None, record: ResultRecord) -> float | None:
    """The reference's p50 over the record's: how many times faster the record is."""
    if reference is None or not record.ok or not record.latency_ms.p50:
        return None
    return reference.latency_ms.p50 / record.latency_ms.p50


def shipped_bytes(record: ResultRecord) -> int:
    """The size of what is really shipped: the Huffman archive a recipe's pass wrote
    (`compress/huffman.py`, its pass report's `archive_bytes`), else the exported file. An
    uncompressed artifact ships its file (records of an older edgecomp gave the run's recipe
    to the baseline exported beside the compressed model too)."""
    if record.recipe is None or record.technique == "none":
        return record.size_bytes
    for report in reversed(record.recipe.reports):
        size = report.metrics.get("archive_bytes")
        if isinstance(size, int) and not isinstance(size, bool):
            return size
    return record.size_bytes


def _baseline_of(rows: list[ResultRecord], baseline: list[ResultRecord]
                 ) -> Callable[[ResultRecord], ResultRecord | None]:
    """Each row's artifact in the baseline: the same model (name and content) where the
    baseline has it, else the same name where the rows hold one model of that name (a
    new release of it); never another model that merely shares a name with a row."""
    newest = latest(baseline)
    exact = {artifact_key(r): r for r in newest}
    named = {named_artifact_key(r): r for r in newest}
    shared = {name for name, shas in _contents(rows).items() if len(shas) > 1}

    def find(record: ResultRecord) -> ResultRecord | None:
        found = exact.get(artifact_key(record))
        if found is None and record.model not in shared:
            found = named.get(named_artifact_key(record))
        return found

    return find


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
    record on each, side by side (empty when the records hold only one target). `model`
    is the model's name as `model_labels` gives it."""
    newest = latest(records)
    targets = sorted({r.target for r in newest})
    if len(targets) < 2:
        return targets, []
    labels = model_labels(newest)
    by_artifact: dict[tuple, dict[str, ResultRecord]] = {}
    for record in newest:
        model, content, technique, _target, *rest = artifact_key(record)
        by_artifact.setdefault((labels[(model, content)], technique, *rest), {})[
            record.target] = record
    rows = [AcrossBoards(model=key[0], technique=key[1], format=key[2], precision=key[3],
                         io_dtype=key[4], on={t: found.get(t) for t in targets})
            for key, found in by_artifact.items() if len(found) > 1]
    rows.sort(key=lambda row: (row.model, row.technique, row.format, row.precision))
    return targets, rows


def run_rows(records: list[ResultRecord], *, stored: bool) -> list[ComparisonRow]:
    """The table a run prints: its records and, where they were `stored`, what earlier
    runs of the store measured of the same models (name and content) on the same targets
    and this run did not (those rows are `earlier`)."""
    if not stored:
        return compare_rows(records)
    from edgecomp.results.store import Store

    run = next((r.run_id for r in records if r.run_id), None)
    keys = {(model_identity(r), r.target) for r in records}
    with Store() as store:
        found = [r for r in store.records(include_failed=True)
                 if (model_identity(r), r.target) in keys]
    return compare_rows(found, history=False, current_run=run)


@dataclass(frozen=True)
class StoredComparison:
    """`compare_stored`'s answer: the rows, the records they were chosen from, where the
    store is, and the baseline's name (None without one)."""

    rows: list[ComparisonRow]
    records: list[ResultRecord]
    location: str
    baseline: str | None


def compare_stored(*, model: str | None = None, target: str | None = None,
                   technique: str | None = None, tag: str | None = None,
                   since: str | None = None, failed: bool = False,
                   baseline: str | None = None, history: bool = False,
                   with_samples: bool = False) -> StoredComparison:
    """The comparison of the results in the store (`edgecomp compare`): filtered by model,
    target, technique, the run's tag and `since` (an ISO time), against the `baseline`
    SPEC's records where one is named (the baseline's own runs are left out of the rows).
    Raw samples only `with_samples` (--json lists them; tables need none)."""
    from edgecomp.errors import InputError
    from edgecomp.results.select import only, resolve
    from edgecomp.results.store import Store

    filters = {"model": model, "target": target, "technique": technique}
    against = before = None
    with Store() as store:
        records = store.records(**filters, tag=tag, since=since, include_failed=failed,
                                with_samples=with_samples)
        if baseline:
            against = resolve(store, baseline, with_samples=False)
            before = [r for r in only(against.records, **filters) if r.ok]
            if not before:
                raise InputError(f"the baseline {against.name} holds no successful result"
                                 + (" for these filters; check --model, --target and "
                                    "--technique." if any(filters.values()) else
                                    "; name another with --baseline."))
            records = [record for record in records if record.run_id not in against.runs]
        location = str(store.location)
    return StoredComparison(rows=compare_rows(records, history=history, baseline=before),
                            records=records, location=location,
                            baseline=against.name if against else None)
