"""The tables deploy, bench, compare and plan print: within 120 columns, the same-call
share beside cosine, the speedup against the original model's fp32, the size of what is
shipped, flag codes with their legend, latencies in units a person reads, and
`compare --csv`."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import torch
from rich.console import Console

from edgecomp.cli import main
from edgecomp.commands import tables, ui
from edgecomp.hardware.planner import make_plan
from edgecomp.hardware.profiles import load_profiles
from edgecomp.model.demo import DemoCNN
from edgecomp.model.facts import model_facts
from edgecomp.results.compare import compare_rows
from edgecomp.results.record import Agreement, Flag, FlagKind, PassRun, RecipeRun
from edgecomp.results.stability import Stability
from edgecomp.results.store import Store
from edgecomp.results.units import duration_text
from tests.results.records import manifest, record
from tests.tables import table_rows

BUSY = Stability(samples=50, timed_s=0.4, spread=1.1, drift=0.01, load=4.0, cores=2,
                 throttled=False, reasons=["load 4.00 on 2 cores"])


def made(technique: str, precision: str, p50: float, *, size: int = 4_000_000,
         archive: int | None = None, decision: float | None = None, flags=(),
         stability: Stability | None = None, model: str = "efficientnet_lite0"):
    """A measured LiteRT artifact of `model` as a recipe (with its Huffman archive's size
    where it wrote one) and a precision made it."""
    base = record(model)
    recipe = None if archive is None else RecipeRun(
        name=technique, source="shipped", text="", export={},
        reports=(PassRun("cluster", {}, {"archive_bytes": archive}),))
    return dataclasses.replace(
        base, technique=technique, precision=precision, size_bytes=size, recipe=recipe,
        agreement=Agreement(0.9855, 0.01, decision=decision), flags=list(flags),
        stability=stability, manifest=manifest(model=model, technique=technique,
                                               precision=precision),
        latency_ms=dataclasses.replace(base.latency_ms, p50=p50, p90=p50 * 1.2))


RECORDS = [
    made("none", "fp32", 3.0),
    made("none", "int8", 1.25, size=1_100_000, decision=81.0, stability=BUSY,
         flags=[Flag(FlagKind.BELOW_TARGET, "below the agreement target (cosine 0.9855)")]),
    made("structured-50", "fp32", 1.0, size=2_000_000),
    made("structured-50", "int8", 0.018, size=600_000),
    made("deep-compression", "fp32", 0.85, size=106_291, archive=16_384),
]


def printed(table) -> str:
    out = Console(width=120, record=True, file=open("/dev/null", "w"))
    out.print(table)
    return out.export_text()


def test_the_table_fits_120_columns_one_line_an_artifact_with_what_decides_a_ship():
    text = printed(tables.comparison_table(compare_rows(RECORDS), title="results"))
    assert max(map(len, text.splitlines())) <= 120
    rows = table_rows(text)
    assert len(rows) == len(RECORDS) == sum(line.startswith("│") for line in text.splitlines())
    by = {(row["technique"], row["precision"]): row for row in rows}
    int8 = by[("none", "int8")]
    assert (int8["same call"], int8["cosine"]) == ("81.0%", "0.9855")
    # The recipe's fp32 is 3x the original's, never "1.00x" against its own fp32.
    assert by[("structured-50", "fp32")]["speedup"] == "3.00x"
    assert by[("structured-50", "int8")]["p50"] == "18 µs"
    assert by[("structured-50", "int8")]["speedup"] == "167x"
    assert int8["p50"] == "1.25 ms" and by[("deep-compression", "fp32")]["p50"] == "850 µs"
    # What is shipped: the Huffman archive, not the .tflite beside it.
    assert by[("deep-compression", "fp32")]["size"] == "16.0 KiB"
    # One flag column: what the artifact does apart from how its timing went.
    assert int8["flags"] == "A · l"
    assert by[("none", "fp32")]["flags"] == ""
    legend = text.split("└")[-1]
    assert "A below the agreement target" in legend and "l board busy" in legend
    assert "S " not in legend and " u " not in legend  # only the codes that appear


def test_wide_shows_the_detail_and_the_own_fp32_speedup():
    rows = compare_rows(RECORDS)
    wide = Console(width=400, record=True, file=open("/dev/null", "w"))
    wide.print(tables.comparison_table(rows, title="results", wide=True))
    by = {(row["technique"], row["precision"]): row for row in table_rows(wide.export_text())}
    assert by[("structured-50", "fp32")]["vs own fp32"] == "1.00x"
    assert by[("structured-50", "int8")]["vs own fp32"] == "55.6x"
    assert by[("deep-compression", "fp32")]["file size"] == "103.8 KiB"
    assert by[("none", "int8")]["p90"] == duration_text(1.25 * 1.2)
    assert {"spread", "load", "run", "date (UTC)"} <= set(by[("none", "fp32")])


def test_a_plan_fits_120_columns_and_wide_keeps_each_reason_on_one_line():
    facts = model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="cnn")
    plan = make_plan(load_profiles()["pi4"], facts)
    narrow = Console(width=120, record=True, file=open("/dev/null", "w"))
    wide = Console(width=1000, record=True, file=open("/dev/null", "w"))
    for console, is_wide in ((narrow, False), (wide, True)):
        original = ui.console
        ui.console = console
        try:
            ui.print_plan(plan, wide=is_wide)
        finally:
            ui.console = original
    narrow_text, wide_lines = narrow.export_text(), wide.export_text().splitlines()
    assert max(map(len, narrow_text.splitlines())) <= 120
    assert max(map(len, wide_lines)) > 120  # the reasons unwrapped
    reasons = [entry["reason"] for entry in plan.to_json()["decisions"].values()]
    assert reasons and all(any(r in line for line in wide_lines) for r in reasons)
    narrow_words = set(narrow_text.split())
    assert all(set(reason.split()) <= narrow_words for reason in reasons)  # wrapped, not cut


def test_compare_writes_the_table_as_csv_in_base_units(results_db, tmp_path, capsys):
    with Store() as store:
        store.add_run(RECORDS, command="edgecomp deploy")
    out = tmp_path / "table.csv"
    assert main(["compare", "--csv", str(out), "--json", str(tmp_path / "t.json")]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(RECORDS)
    by = {(row["technique"], row["precision"]): row for row in rows}
    assert float(by[("structured-50", "int8")]["p50_ms"]) == pytest.approx(0.018)
    assert float(by[("structured-50", "fp32")]["speedup_vs_original_fp32"]) == pytest.approx(3)
    assert float(by[("structured-50", "fp32")]["speedup_vs_own_fp32"]) == pytest.approx(1)
    assert int(by[("deep-compression", "fp32")]["shipped_size_bytes"]) == 16_384
    assert int(by[("deep-compression", "fp32")]["file_size_bytes"]) == 106_291
    assert float(by[("none", "int8")]["same_call_pct"]) == pytest.approx(81.0)
    assert (by[("none", "int8")]["flags"], by[("none", "int8")]["timing_flags"]) == ("A", "l")
    # --json carries the same speedups, named, and still reads back as records.
    written = {(r["technique"], r["precision"]): r
               for r in json.loads((tmp_path / "t.json").read_text())}
    assert written[("structured-50", "fp32")]["comparison"]["speedup_vs_own_fp32"] == 1.0
    assert main(["compare", "--baseline", str(tmp_path / "t.json")]) == 0
    capsys.readouterr()
    # A place that cannot be written is refused before anything runs, in one sentence.
    assert main(["compare", "--csv", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--csv" in err and "is a folder; name the file to write in it." in err
    assert not list(tmp_path.glob("*.csv.*"))  # nothing half-written beside it


def test_a_warning_wraps_at_words_on_a_terminal_and_stays_one_line_in_a_log():
    from rich.text import Text

    sentence = ("timing of efficientnet_lite0.int8.tflite on pi4 is unstable: load 4.10 on "
                "4 cores. Measure on a quieter board (stop what else runs on it).")
    terminal = Console(width=60, force_terminal=True, record=True, file=open("/dev/null", "w"))
    log = Console(width=60, force_terminal=False, record=True, file=open("/dev/null", "w"))
    ui.warn(Text("(l)"), sentence, to=terminal)
    ui.warn(Text("(l)"), sentence, to=log)
    wrapped = terminal.export_text().splitlines()
    assert len(wrapped) > 1 and all(len(line) <= 60 for line in wrapped)
    assert " ".join(" ".join(wrapped).split()) == f"(l) {sentence}"  # no word cut in two
    assert log.export_text() == f"(l) {sentence}\n"


def test_an_uncompressed_artifact_ships_its_file_whatever_recipe_it_carries():
    """Records an older edgecomp stored gave the run's recipe to the baseline too: its size
    is still its file's."""
    from edgecomp.results.compare import shipped_bytes

    baseline = dataclasses.replace(made("deep-compression", "fp32", 0.9, size=382_660,
                                        archive=16_384), technique="none")
    assert shipped_bytes(baseline) == 382_660
    assert shipped_bytes(made("deep-compression", "fp32", 0.85, archive=16_384)) == 16_384
