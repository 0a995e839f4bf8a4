"""Terminal output owned by the CLI: the console, progress bars, warnings and the plan
(the result tables: `commands.tables`)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from edgecomp.errors import terminal_safe

# When output is not a terminal (CI logs, pipes) rich would assume 80 columns; tables are
# printed within TABLE_WIDTH, and 280 holds --wide's columns with long model names.
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
            # One line in a log file; on a terminal, wrapped at words, never mid-word.
            err_console.print(text, markup=False, highlight=False,
                              soft_wrap=not err_console.is_terminal)

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


# The default tables fit this many columns (a laptop's terminal, a CI log); `--wide`
# shows every column at the console's own width.
TABLE_WIDTH = 120


def print_table(table: Table, *, wide: bool = False) -> None:
    """Print a table on stdout: within TABLE_WIDTH unless `wide`."""
    console.print(table, width=None if wide else min(console.width, TABLE_WIDTH))


def warn(prefix: Text, text: str, *, to: Console | None = None) -> None:
    """A warning as a paragraph of its own (on stderr unless `to`): on a terminal rich
    wraps it at word boundaries within TABLE_WIDTH; elsewhere (CI logs, pipes) it stays
    one line, for grep."""
    out = to or err_console
    line = Text.assemble(prefix, " ", shown(text))
    if out.is_terminal:
        out.print(line, width=min(out.width, TABLE_WIDTH))
    else:
        out.print(line, soft_wrap=True)


def print_plan(plan, *, wide: bool = False) -> None:
    """A plan's decisions with their reasons (wrapped within TABLE_WIDTH unless `wide`),
    its memory fit and its warnings."""
    table = Table(title=shown(f"plan for {plan.model} on {plan.profile}"), title_justify="left")
    table.add_column("decision", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("reason", ratio=1)  # the sentence wraps at words within the width
    for key, entry in plan.to_json()["decisions"].items():
        value = str(entry["value"]).lower() if isinstance(entry["value"], bool) else \
            str(entry["value"])
        table.add_row(key, shown(value + (" (set)" if entry["overridden"] else "")),
                      shown(entry["reason"]))
    table.add_row("memory", plan.memory_fit.value, plan.memory_reason)
    print_table(table, wide=wide)
    for warning in plan.warnings:
        warn(Text("warning:", style="yellow"), warning, to=console)
