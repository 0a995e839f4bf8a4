"""The per-op profile (`--profile-ops`) printed after the results table: one small table
per artifact with its top ops by time, the share outside the delegate and in data-movement
ops, or the sentence saying why the runtime could not be profiled."""

from __future__ import annotations

from rich.table import Table

from edgecomp.commands.ui import shown
from edgecomp.errors import terminal_safe
from edgecomp.results.record import ResultRecord
from edgecomp.results.units import duration_text


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def profile_table(record: ResultRecord) -> Table | str:
    """The record's profile as a table, or the one-line reason it has none. Node and file
    names come from the user's model: never read as markup, shown escaped."""
    profile = record.profile or {}
    title = f"{record.artifact_name} on {record.target}: per-op profile"
    if not profile.get("top"):
        return terminal_safe(
            f"{title}: none ({profile.get('reason') or 'the runtime reported no ops'})")
    caption = (f"{profile['runs']} profiled runs, ops total "
               f"{duration_text(profile['total_ms'])} (timed p50 "
               f"{duration_text(record.latency_ms.p50)}); outside the delegate "
               f"{_percent(profile['outside_delegate_share'])}; quantize/dequantize/"
               f"transpose/reshape-type {_percent(profile['data_movement_share'])}; "
               f"{profile['source']}")
    table = Table(title=shown(title), caption=shown(caption), title_justify="left",
                  caption_justify="left")
    for column in ("op type", "node", "ran on"):
        table.add_column(column)
    for column in ("time", "share"):
        table.add_column(column, justify="right")
    for op in profile["top"]:
        table.add_row(shown(op["op_type"]), shown(op["name"]), shown(op["executor"]),
                      duration_text(op["ms"]), _percent(op["share"]))
    return table


def print_profiles(records: list[ResultRecord], console) -> None:
    for record in records:
        if record.ok and record.profile is not None:
            table = profile_table(record)
            console.print(table, markup=False) if isinstance(table, str) else \
                console.print(table)
