"""Terminal output owned by the CLI: the console, progress bars and result tables."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from edgecomp.errors import terminal_safe
from edgecomp.results.compare import AcrossBoards, ComparisonRow
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import load_text, spread_text, speedup_text

# Tables are wide; when output is not a terminal (CI logs, pipes) rich would assume 80 columns.
# 280 holds `compare --baseline`'s columns, each row's run and date and long model names.
_WIDTH = None if os.isatty(1) else 280
console = Console(stderr=False, highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False)


@contextmanager
def progress_bars() -> Iterator:
    """A `progress(description, done, total)` callback drawing one bar per description,
    with the time left at its pace so far (a finished bar makes room for the next); plain
    phase lines when stderr is not a terminal (CI logs, pipes), where bars show nothing
    (`edgecomp.commands.progress`)."""
    if not err_console.is_terminal:
        from edgecomp.commands.progress import PhaseLines

        yield PhaseLines()
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                  console=err_console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def progress(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bars.add_task(description, total=total)
            bars.update(tasks[description], completed=done, total=total)
            if total and done >= total:
                bars.remove_task(tasks.pop(description))

        yield progress


@contextmanager
def shown_logs(*names: str) -> Iterator[None]:
    """Show the INFO lines of these library loggers on stderr, plain, while the block runs
    (the CLI shows only warnings of the others unless --debug)."""
    import logging

    class ToConsole(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = terminal_safe(record.getMessage())
            if record.levelno >= logging.WARNING:
                text = f"warning: {text}"
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)

    handler = ToConsole(level=logging.INFO)
    loggers = [logging.getLogger(name) for name in names]
    before = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
        logger.propagate = False  # once, not again through --debug's root handler
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, before):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def shown(text: str, style: str = "") -> Text:
    """A name or sentence from users' data as a table cell or line: never read as markup,
    what a terminal cannot show escaped (`terminal_safe`)."""
    return Text(terminal_safe(text), style=style)


def _fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.2f} MiB"


def comparison_table(rows: list[ComparisonRow], *, title: str = "results",
                     baseline_name: str | None = None) -> Table:
    """The `compare` table: one line per artifact, fastest first within model and target;
    with `baseline_name`, each artifact's change against the same artifact there
    ("new" where the baseline has none).

    Names and the title come from users' manifests, recipes and paths: they are shown as
    written (rich Text), never read as markup, what a terminal cannot show escaped
    (`terminal_safe`).
    """
    table = Table(title=shown(title), title_justify="left")
    against = baseline_name is not None
    extra = ("p50 vs base", "p90 vs base", "size vs base", "acc vs base") if against else ()
    for column in ("model", "technique", "target", "format", "precision", "size",
                   "accuracy", "Δ pts", "cosine", "p50 ms", "p90 ms", "speedup", "spread",
                   "load", "energy mJ", *extra, "run", "date (UTC)"):
        names = column in ("model", "technique", "target", "format", "precision", "run")
        # A name too long for its column folds onto the next line rather than being cut:
        # two models sharing a prefix must stay told apart.
        table.add_column(column, justify="left" if names else "right",
                         overflow="fold" if names else "ellipsis")
    for row in rows:
        r = row.record
        names = [shown(name) for name in (row.model or r.model, r.technique, r.target, r.format)]
        if r.emulated:
            names[2].append(" (emulated)", style="yellow")
        io = r.manifest.io_dtype
        precision = shown(r.precision + (" (int8 I/O)" if io == "int8" and r.precision == "int8"
                                        else ""))
        changes = [*(_changes(row) if against else []), *_run_cells(row)]
        if not r.ok:
            table.add_row(*names, precision, _size(r.size_bytes),
                          "-", "-", "-", "[red]failed[/red]", "-", "-", "-", "-", "-",
                          *changes)
            continue
        delta = "-" if r.accuracy_delta is None else f"{r.accuracy_delta:+.2f}"
        if r.flags:
            precision.append(" (!)", style="yellow")
        table.add_row(*names, precision, _size(r.size_bytes),
                      _fmt(r.accuracy, ".2f", "%"), delta,
                      _fmt(r.agreement.cosine if r.agreement else None, ".4f"),
                      _fmt(r.latency_ms.p50, ".3f"), _fmt(r.latency_ms.p90, ".3f"),
                      speedup_text(row.speedup, r.stability), _spread(r),
                      load_text(r.stability), _fmt(r.energy_mj, ".3f"), *changes)
    newest = next((row.record.run_id for row in rows if not row.earlier and row.record.run_id),
                  None)
    notes = []
    if newest and any(row.earlier for row in rows):
        notes.append(f"(earlier): measured in an earlier run than run {newest}, the newest shown")
    if any(r.record.stability is not None and not r.record.stability.stable for r in rows):
        notes.append(UNSTABLE_NOTE)
    if notes:
        table.caption, table.caption_justify = Text("\n".join(map(terminal_safe, notes))), "left"
    return table


UNSTABLE_NOTE = ("spread: p90/p50 of the timed runs · load: 1-minute load average/online "
                 "cores · ! unstable timing (reasons in the warnings and in --json "
                 "`stability`); a speedup whose rounds disagree is shown as their range")


def _spread(record: ResultRecord) -> Text:
    text = spread_text(record.stability)
    return Text(text, style="yellow" if text.endswith("!") else "")


def _run_cells(row: ComparisonRow) -> list[Text]:
    """The run a row comes from, marked when it is earlier than the newest shown, and
    when it was measured."""
    run = shown(row.record.run_id or "not stored", style="" if row.record.run_id else "dim")
    if row.earlier:
        run.append(" (earlier)", style="yellow")
    return [run, Text(row.record.when("%Y-%m-%d %H:%M"))]


EMULATED_NOTE = ("* emulated CPU (e.g. qemu-user): accuracy and agreement come from the "
                 "board's own kernels; its latencies are not a real board's")


def across_boards_table(targets: list[str], rows: list[AcrossBoards]) -> Table:
    """The same artifacts on several boards side by side: per board p50 (ms) and the
    quality measured there (accuracy with labels, else agreement, else cosine)."""
    table = Table(title="the same artifacts across boards (p50 ms · quality)",
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
                cell = Text(f"{record.latency_ms.p50:.3f}" + ("*" if record.emulated else ""))
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


def write_json(path: Path, records: list[ResultRecord]) -> None:
    """Write result objects (the README documents the keys) atomically to `path`."""
    from edgecomp.atomic import atomic_write_json

    atomic_write_json(path, [r.to_json() for r in records])


def print_plan(plan) -> None:
    """A plan's decisions with their reasons, its memory fit and its warnings."""
    table = Table(title=shown(f"plan for {plan.model} on {plan.profile}"), title_justify="left")
    table.add_column("decision")
    table.add_column("value")
    table.add_column("reason")
    for key, entry in plan.to_json()["decisions"].items():
        value = str(entry["value"]).lower() if isinstance(entry["value"], bool) else \
            str(entry["value"])
        table.add_row(key, value + (" (set)" if entry["overridden"] else ""), entry["reason"])
    table.add_row("memory", plan.memory_fit.value, plan.memory_reason)
    console.print(table)
    for warning in plan.warnings:
        console.print(Text("warning:", style="yellow"), shown(warning))
