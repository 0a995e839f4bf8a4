"""What deploy and bench print once they have measured, and their exit status.

The table of this run's artifacts (with the rows earlier runs measured of the same models
on the same boards), the same artifacts across boards, per-op profiles, the int8
candidate each search kept, then on stderr every failure, flag and unstable timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.text import Text

from edgecomp.commands.profile_view import print_profiles
from edgecomp.commands.tables import across_boards_table, comparison_table, write_json
from edgecomp.commands.ui import console, print_table, shown, warn
from edgecomp.results.compare import across_boards, run_rows
from edgecomp.results.flags import FLAG_CODES, flag_codes
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import warning


def measured_run(measure: Callable[[], list[ResultRecord]], *, command: str, recorded: bool,
                 json_path: Path | None, wide: bool = False
                 ) -> tuple[list[ResultRecord], int]:
    """Run `measure` (deploy or bench) and show its outcome; its records and exit status.
    A run the store failed to record is shown and written all the same, then its one
    sentence (where it is kept) ends the command with status 1."""
    from edgecomp.pipeline.record import RunKept

    try:
        records = measure()
    except RunKept as kept:
        show_outcome(kept.records, command=command, recorded=False, json_path=json_path,
                     wide=wide)
        warn(Text("error:", style="bold red"), str(kept))
        return kept.records, 1
    return records, show_outcome(records, command=command, recorded=recorded,
                                 json_path=json_path, wide=wide)


def show_outcome(records: list[ResultRecord], *, command: str, recorded: bool,
                 json_path: Path | None, wide: bool = False) -> int:
    """Print the run's results (and write them to `json_path`); 1 when any failed."""
    run = next((r.run_id for r in records if r.run_id), None)
    rows = run_rows(records, stored=recorded)
    earlier = sum(row.earlier for row in rows)
    title = (f"{command}: {len(records)} artifact(s) measured"
             + (f" in run {run}" if run else "")
             + (f"; {earlier} row(s) from earlier runs, marked (earlier)" if earlier else ""))
    print_table(comparison_table(rows, title=title, wide=wide, name_run=False), wide=wide)
    print_across_boards([row.record for row in rows], wide=wide)
    print_profiles(records, console)
    if json_path:
        write_json(json_path, records, rows)
    failed = [r for r in records if not r.ok]
    for record in failed:
        warn(Text("failed", style="red"), f"{record.artifact_name}: {record.error}")
    shown_search = set()
    for record in records:
        search = record.manifest.search
        if search and record.artifact_sha256 not in shown_search:
            shown_search.add(record.artifact_sha256)
            console.print(shown(f"{record.artifact_name}: kept int8 candidate "
                                f"\"{search.kept}\" of {len(search.tried)} tried (all in its "
                                "manifest)"), highlight=False)
        for flag in record.flags:
            code = FLAG_CODES[flag.kind][0]
            warn(Text(f"({code})", style="yellow"), f"{record.artifact_name}: {flag.text}")
        _warn_unstable(record)
    return 1 if failed else 0


def print_across_boards(records: list[ResultRecord], *, wide: bool = False) -> None:
    """With results from several boards, the same artifacts side by side."""
    targets, rows = across_boards([r for r in records if r.ok or r.error])
    if rows:
        print_table(across_boards_table(targets, rows), wide=wide)


def _warn_unstable(record: ResultRecord) -> None:
    """One line when a record's timing was unstable: why, and what to do."""
    line = warning(record.stability, artifact=record.artifact_name,
                   target=record.target) if record.stability is not None else None
    if line:
        codes = " ".join(flag_codes(record)[1]) or "u"
        warn(Text(f"({codes})", style="yellow"), line)
