"""The result tables deploy, bench and compare print (within `ui.TABLE_WIDTH` unless
`--wide`), and the files `--json` and `compare --csv` write from the same rows."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from edgecomp.commands.ui import shown
from edgecomp.errors import terminal_safe
from edgecomp.results.compare import AcrossBoards, ComparisonRow, shipped_bytes
from edgecomp.results.flags import codes_text, legend
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import interleaved_text, load_text, spread_text
from edgecomp.results.units import duration_text, size_text, times_text

def _fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


# The columns of the comparison table: (name, numbers right-aligned, only with --wide).
_COLUMNS = (("model", False, False), ("technique", False, False), ("target", False, False),
            ("format", False, False), ("precision", False, False), ("size", True, False),
            ("file size", True, True), ("top-1", True, False), ("Δ pts", True, True),
            ("same call", True, False), ("cosine", True, False), ("p50", True, False),
            ("p90", True, True), ("speedup", True, False), ("vs own fp32", True, True),
            ("interleaved", True, True), ("spread", True, True), ("load", True, True),
            ("energy mJ", True, True), ("flags", False, False))
_NAMES = ("model", "technique", "target", "format", "precision", "run")
# Shown only where a row has something to say in them (all of them with --wide).
_WHEN_FILLED = ("top-1", "same call", "cosine", "flags")
_TWO_LINE_HEADERS = ("same call", "file size", "vs own fp32", "energy mJ", "p50 vs base",
                     "p90 vs base", "size vs base", "acc vs base")


def comparison_table(rows: list[ComparisonRow], *, title: str = "results",
                     baseline_name: str | None = None, wide: bool = False,
                     name_run: bool = True) -> Table:
    """The `compare` table: one line per artifact, fastest first within model and target;
    with `baseline_name`, each artifact's change against the same artifact there
    ("new" where the baseline has none). The columns fit TABLE_WIDTH; `wide` adds the
    detail (p90, the interleaved rounds, spread, load, energy, each row's run and date).
    Where every row shares one target or run, the title names it (the run unless
    `name_run` is False: a title that names it already).

    size is what is shipped (a recipe's Huffman archive where it wrote one); speedup is
    the p50 of the original model's fp32 artifact (same target and format) over this
    p50; flags are short codes explained under the table (`results.flags.legend`).

    Names and the title come from users' manifests, recipes and paths: they are shown as
    written (rich Text), never read as markup, what a terminal cannot show escaped
    (`terminal_safe`).
    """
    several_runs = any(row.earlier for row in rows)
    targets = sorted({row.record.target for row in rows})
    one_target = len(targets) == 1 and not wide and not any(r.record.emulated for r in rows)
    if one_target:  # said once in the title rather than on every line
        title = f"{title} · on {targets[0]}"
    runs = {row.record.run_id for row in rows}
    if len(runs) == 1 and None not in runs and not wide and name_run:
        title = f"{title} · run {runs.pop()}"
    # Padding collapsed between cells: two characters a column instead of three.
    table = Table(title=shown(title), title_justify="left", collapse_padding=True,
                  pad_edge=False)
    cells = [_row_cells(row, against=baseline_name is not None) for row in rows]
    columns = [(name, right) for name, right, detail in _COLUMNS
               if (wide or not detail) and not (one_target and name == "target")
               and (wide or name not in _WHEN_FILLED or
                    any(str(row.get(name, "-")) not in ("-", "") for row in cells))]
    if baseline_name is not None:
        if not wide:  # the changes take their place; --wide shows both
            columns = [c for c in columns if c[0] not in ("top-1", "cosine")]
        columns += [(name, True) for name in (("p50 vs base", "p90 vs base", "size vs base",
                                               "acc vs base") if wide else
                                              ("p50 vs base", "size vs base", "acc vs base"))]
    if wide or several_runs:
        columns.append(("run", False))
    if wide:
        columns.append(("date (UTC)", False))
    for name, right in columns:
        # A name too long for its column folds onto the next line rather than being cut:
        # two models sharing a prefix must stay told apart. Numbers never wrap.
        # Two-word headers over short numbers take two lines (same / call).
        header = name.replace(" ", "\n", 1) if name in _TWO_LINE_HEADERS else name
        table.add_column(header, justify="right" if right else "left",
                         overflow="fold" if name in _NAMES else "ellipsis",
                         no_wrap=right)
    for row in cells:
        table.add_row(*(row.get(name, "-") for name, _ in columns))
    notes = []
    newest = next((row.record.run_id for row in rows if not row.earlier and row.record.run_id),
                  None)
    if newest and several_runs:
        notes.append(f"(earlier): measured in an earlier run than run {newest}, the newest shown")
    if any(shipped_bytes(row.record) != row.record.size_bytes for row in rows):
        notes.append("size: what is shipped, the recipe's Huffman archive where it wrote one "
                     "(the exported file in --wide's `file size`)")
    notes += legend([row.record for row in rows if row.record.ok])
    if wide and any(r.record.stability is not None for r in rows):
        notes.append(WIDE_NOTE)
    if notes:
        table.caption, table.caption_justify = Text("\n".join(map(terminal_safe, notes))), "left"
    return table


WIDE_NOTE = ("speedup: the original fp32's p50 over this p50 · vs own fp32: over its own "
             "technique's fp32 · interleaved: median over the interleaved rounds against its "
             "own fp32 (the range of the rounds beside it) · spread: p90/p50 of the timed "
             "runs · load: 1-minute load average/online cores")


def _row_cells(row: ComparisonRow, *, against: bool) -> dict[str, Text | str]:
    """One artifact's cells by column name ("-" where a column has nothing to say)."""
    r = row.record
    cells: dict[str, Text | str] = {
        name: shown(value) for name, value in (("model", row.model or r.model),
                                               ("technique", r.technique),
                                               ("target", r.target), ("format", r.format))}
    if r.emulated:
        cells["target"].append(" (emulated)", style="yellow")
    io = r.manifest.io_dtype
    cells["precision"] = shown(r.precision + (" (int8 I/O)" if io == "int8" and
                                              r.precision == "int8" else ""))
    cells["size"] = size_text(shipped_bytes(r))
    cells["file size"] = size_text(r.size_bytes)
    if against:
        cells.update(zip(("p50 vs base", "p90 vs base", "size vs base", "acc vs base"),
                         _changes(row)))
    run = shown(r.run_id or "not stored", style="" if r.run_id else "dim")
    if row.earlier:
        run.append(" (earlier)", style="yellow")
    cells["run"], cells["date (UTC)"] = run, Text(r.when("%Y-%m-%d %H:%M"))
    if not r.ok:
        cells["p50"] = Text("failed", style="red")
        return cells
    cells.update({
        "top-1": _fmt(r.accuracy, ".2f", "%"),
        "Δ pts": _fmt(r.accuracy_delta, "+.2f"),
        "same call": _fmt(r.decision, ".1f", "%"),
        "cosine": _fmt(r.agreement.cosine if r.agreement else None, ".4f"),
        "p50": duration_text(r.latency_ms.p50), "p90": duration_text(r.latency_ms.p90),
        "speedup": times_text(row.speedup), "vs own fp32": times_text(row.own_speedup),
        "interleaved": interleaved_text(row.interleaved_speedup, r.stability),
        "spread": spread_text(r.stability), "load": load_text(r.stability),
        "energy mJ": _fmt(r.energy_mj, ".3f"),
        "flags": Text(codes_text(r), style="yellow")})
    return cells


EMULATED_NOTE = ("* emulated CPU (e.g. qemu-user): accuracy and agreement come from the "
                 "board's own kernels; its latencies are not a real board's")


def across_boards_table(targets: list[str], rows: list[AcrossBoards]) -> Table:
    """The same artifacts on several boards side by side: per board p50 (ms) and the
    quality measured there (accuracy with labels, else agreement, else cosine)."""
    table = Table(title="the same artifacts across boards (p50 · quality)",
                  title_justify="left")
    for column in ("model", "technique", "format", "precision"):
        table.add_column(column, overflow="fold")
    for target in targets:
        table.add_column(shown(target), justify="right", overflow="fold")
    table.add_column("same file")
    for row in rows:
        cells = []
        for target in targets:
            record = row.on[target]
            if record is None:
                cells.append(Text("-"))
            elif not record.ok:
                cells.append(Text("failed", style="red"))
            else:
                cell = Text(duration_text(record.latency_ms.p50) + ("*" if record.emulated else ""))
                quality = _quality(record)
                if quality:
                    cell.append(f" · {quality}")
                cells.append(cell)
        precision = row.precision + (" (int8 I/O)" if row.io_dtype == "int8" and
                                     row.precision == "int8" else "")
        table.add_row(*[shown(v) for v in (row.model, row.technique, row.format, precision)],
                      *cells, "yes" if row.same_build else "no")
    if any(r is not None and r.emulated for row in rows for r in row.on.values()):
        table.caption = EMULATED_NOTE
    return table


def _quality(record: ResultRecord) -> str:
    if record.accuracy is not None:
        return f"{record.accuracy:.2f}%"
    if record.decision is not None:
        return f"{record.decision:.1f}% same"
    if record.agreement is not None:
        return f"cos {record.agreement.cosine:.4f}"
    return ""


def _changes(row: ComparisonRow) -> list[str]:
    """The baseline columns of one row: relative latency and size, accuracy points."""
    if row.baseline is None:
        return ["new", "", "", ""]
    cells = [_fmt(row.change(field), "+.1%") for field in ("p50", "p90", "size")]
    return cells + [_fmt(row.accuracy_change(), "+.2f", " pts")]


def write_json(path: Path, records: list[ResultRecord],
               rows: list[ComparisonRow] | None = None) -> None:
    """Write result objects (the README documents the keys) atomically to `path`, each
    with its table row's speedups and shipped size under `comparison` where `rows` has
    the same artifact from the same run."""
    from edgecomp.atomic import atomic_write_json
    from edgecomp.results.compare import artifact_key

    found = {(artifact_key(row.record), row.record.run_id): row for row in rows or []}
    written = []
    for record in records:
        data = record.to_json()
        row = found.get((artifact_key(record), record.run_id))
        if row is not None:
            data["comparison"] = row.speedups_json()
        written.append(data)
    atomic_write_json(path, written)


CSV_COLUMNS = ("model", "technique", "target", "format", "precision", "io_dtype",
               "shipped_size_bytes", "file_size_bytes", "accuracy_pct", "accuracy_delta_pts",
               "same_call_pct", "cosine", "p50_ms", "p90_ms", "speedup_vs_original_fp32",
               "speedup_vs_own_fp32", "interleaved_speedup_vs_own_fp32", "spread",
               "load_per_core", "energy_mj", "flags", "timing_flags", "error", "run",
               "measured_utc")


def write_csv(path: Path, rows: list[ComparisonRow]) -> None:
    """Write the table's rows to `path` atomically, one artifact a line, in base units
    (bytes, ms, percent, plain ratios) that a spreadsheet reads as numbers."""
    import csv
    import io

    from edgecomp.atomic import atomic_write_text
    from edgecomp.results.flags import flag_codes

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        r = row.record
        figure = r.stability
        artifact, timing = flag_codes(r) if r.ok else ([], [])
        speedups = row.speedups_json()
        writer.writerow({
            "model": row.model or r.model, "technique": r.technique, "target": r.target,
            "format": r.format, "precision": r.precision, "io_dtype": r.manifest.io_dtype,
            "shipped_size_bytes": speedups["shipped_size_bytes"],
            "file_size_bytes": r.size_bytes, "accuracy_pct": r.accuracy,
            "accuracy_delta_pts": r.accuracy_delta, "same_call_pct": r.decision,
            "cosine": r.agreement.cosine if r.agreement else None,
            "p50_ms": r.latency_ms.p50 if r.ok else None,
            "p90_ms": r.latency_ms.p90 if r.ok else None,
            **{key: speedups[key] for key in ("speedup_vs_original_fp32",
                                              "speedup_vs_own_fp32",
                                              "interleaved_speedup_vs_own_fp32")},
            "spread": figure.spread if figure else None,
            "load_per_core": figure.load_per_core if figure else None,
            "energy_mj": r.energy_mj, "flags": " ".join(artifact),
            "timing_flags": " ".join(timing), "error": r.error, "run": r.run_id,
            "measured_utc": r.when("%Y-%m-%dT%H:%M:%SZ")})
    atomic_write_text(path, text.getvalue())
