"""`edgecomp compare` over a stored database: names printed as written, samples in --json."""

from __future__ import annotations

import argparse
import dataclasses
import json

from edgecomp.cli import main
from edgecomp.commands.flow_cmd import _finish
from edgecomp.results.store import Store
from tests.results.records import record


def test_compare_prints_names_with_rich_markup_literally(tmp_path, monkeypatch, capsys):
    path = tmp_path / "[bold]results" / "r.db"  # the location is printed too
    monkeypatch.setenv("EDGECOMP_DB", str(path))
    evil = dataclasses.replace(record("evil[/]"), technique="[bold]x[/bold]", target="[red]t")
    failed = dataclasses.replace(record("[/]gone", error="[/red] lost the board"),
                                 artifact_name="[i]a.tflite")
    with Store() as store:
        store.add_run([evil, failed], command="bench")
    assert main(["compare", "--failed"]) == 0
    out = capsys.readouterr().out
    for text in ("evil[/]", "[bold]x[/bold]", "[red]t", "[/]gone", "[bold]results"):
        assert text in out


def test_failed_measurements_print_their_names_and_errors_literally(capsys):
    failed = dataclasses.replace(record("m", error="[/red] lost [b]the board"),
                                 artifact_name="[/]a.tflite")
    args = argparse.Namespace(no_record=True, json=None)
    assert _finish(args, [failed], command="bench") == 1
    assert "[/]a.tflite: [/red] lost [b]the board" in capsys.readouterr().err


def test_compare_json_keeps_every_raw_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "r.db"))
    stored = record(samples=20_000, seed=5)
    with Store() as store:
        store.add_run([stored], command="bench")
    assert main(["compare", "--json", str(tmp_path / "out.json")]) == 0
    (written,) = json.loads((tmp_path / "out.json").read_text())
    assert written["samples_ms"] == stored.samples_ms


def test_compare_against_a_tagged_baseline_shows_each_change(results_db, capsys):
    def measured(model: str, p50: float, size: int, accuracy: float, tag: str):
        base = record(model)
        return dataclasses.replace(
            base, tag=tag, size_bytes=size, accuracy=accuracy,
            latency_ms=dataclasses.replace(base.latency_ms, p50=p50, p90=p50 * 2))

    with Store() as store:
        store.add_run([measured("fast", 1.0, 1000, 98.0, "v1"),
                       measured("gone", 1.0, 1000, 98.0, "v1")], command="edgecomp deploy")
        store.add_run([measured("fast", 1.5, 1100, 97.5, "v2"),
                       measured("fresh", 2.0, 1000, 90.0, "v2")], command="edgecomp deploy")
    assert main(["compare", "--baseline", "v1"]) == 0
    out = capsys.readouterr().out
    fast = next(line for line in out.splitlines() if "fast" in line)
    assert "+50.0%" in fast and "+10.0%" in fast and "-0.50 pts" in fast
    fresh = next(line for line in out.splitlines() if "fresh" in line)
    assert "new" in fresh
    assert "gone" not in out  # the baseline's own rows are not candidates
    assert main(["compare", "--baseline", "v9"]) == 1
    assert "no results are tagged 'v9'" in capsys.readouterr().err
    assert main(["compare", "--tag", "v2", "--technique", "none", "--since", "2025-12-31"]) == 0
    out = capsys.readouterr().out
    assert "fresh" in out and "gone" not in out
