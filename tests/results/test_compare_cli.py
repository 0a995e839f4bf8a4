"""`edgecomp compare` over a stored database: names printed as written, samples in --json."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edgecomp.cli import main
from edgecomp.commands.outcome import show_outcome
from edgecomp.results.store import Store
from tests.results.records import record
from tests.tables import table_rows


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
    assert show_outcome([failed], command="bench", recorded=False, json_path=None) == 1
    assert "[/]a.tflite: [/red] lost [b]the board" in capsys.readouterr().err


def test_compare_json_keeps_every_raw_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "r.db"))
    stored = record(samples=20_000, seed=5)
    with Store() as store:
        store.add_run([stored], command="bench")
    assert main(["compare", "--json", str(tmp_path / "out.json")]) == 0
    (written,) = json.loads((tmp_path / "out.json").read_text())
    assert written["samples_ms"] == stored.samples_ms


def measured(model: str, p50: float, size: int, accuracy: float, tag: str | None = None,
             branch: str | None = None):
    """A record of `model` with this p50 (p90 twice it), size and accuracy, in a run with
    this tag and made on this git branch."""
    base = record(model)
    git = {"commit": "c0ffee" * 6 + "c0ff", "branch": branch, "dirty": False} if branch else None
    return dataclasses.replace(
        base, tag=tag, git=git, size_bytes=size, accuracy=accuracy,
        latency_ms=dataclasses.replace(base.latency_ms, p50=p50, p90=p50 * 2))


def test_compare_against_a_tagged_baseline_shows_each_change(results_db, capsys):
    with Store() as store:
        store.add_run([measured("fast", 1.0, 1000, 98.0, "v1"),
                       measured("gone", 1.0, 1000, 98.0, "v1")], command="edgecomp deploy")
        store.add_run([measured("fast", 1.5, 1100, 97.5, "v2"),
                       measured("fresh", 2.0, 1000, 90.0, "v2")], command="edgecomp deploy")
    assert main(["compare", "--baseline", "v1"]) == 0
    out = capsys.readouterr().out
    rows = changes(out)
    assert (rows["fast"]["p50 vs base"], rows["fast"]["size vs base"],
            rows["fast"]["acc vs base"]) == ("+50.0%", "+10.0%", "-0.50 pts")
    assert rows["fresh"]["p50 vs base"] == "new"
    assert "gone" not in out  # the baseline's own rows are not candidates
    assert main(["compare", "--baseline", "v9"]) == 1
    assert "no tag 'v9' in the results store" in capsys.readouterr().err
    assert main(["compare", "--tag", "v2", "--technique", "none", "--since", "2025-12-31"]) == 0
    out = capsys.readouterr().out
    assert "fresh" in out and "gone" not in out


def changes(out: str) -> dict[str, dict[str, str]]:
    """Each model's row of the table (its cells by header), by model."""
    return {row["model"]: row for row in table_rows(out)}


@pytest.mark.parametrize("spelling", ["run", "branch", "file"])
def test_compare_against_a_run_a_branch_or_a_file_shows_each_change(results_db, tmp_path,
                                                                     capsys, spelling):
    """The same SPEC spellings as `gate --baseline`: a stored run's rows are left out of
    the table, a file's are not (its records may come from anywhere)."""
    with Store() as store:
        base = store.add_run([measured("fast", 1.0, 1000, 98.0, branch="main"),
                              measured("gone", 1.0, 1000, 98.0, branch="main")],
                             command="edgecomp deploy")
    saved = tmp_path / "base.json"
    assert main(["compare", "--json", str(saved)]) == 0
    with Store() as store:
        store.add_run([measured("fast", 1.5, 1100, 97.5, branch="feat/x"),
                       measured("fresh", 2.0, 1000, 90.0, branch="feat/x")],
                      command="edgecomp deploy")
    capsys.readouterr()
    spec = {"run": f"run:{base}", "branch": "branch:main", "file": str(saved)}[spelling]
    assert main(["compare", "--baseline", spec]) == 0
    rows = changes(capsys.readouterr().out)
    assert (rows["fast"]["p50 vs base"], rows["fast"]["size vs base"],
            rows["fast"]["acc vs base"]) == ("+50.0%", "+10.0%", "-0.50 pts")
    assert rows["fresh"]["p50 vs base"] == "new"
    if spelling == "file":
        assert rows["gone"]["p50 vs base"] == "+0.0%"  # a file's records stay in the rows
    else:
        assert "gone" not in rows
    # The baseline is filtered like the rows; nothing left is one sentence, exit 1.
    assert main(["compare", "--baseline", spec, "--model", "fresh"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "holds no successful result for these filters" in err


@pytest.mark.parametrize("spec, sentence", [
    ("nosuch", "no tag 'nosuch' in the results store"),
    ("tag:nosuch", "no tag 'nosuch' in the results store"),
    ("run:0000", "no run '0000' in the results store"),
    ("branch:gone", "no run recorded on git branch 'gone'"),
    ("run:", "--baseline 'run:' names no run; write run:NAME."),
    ("missing.json", "the baseline results file missing.json does not exist"),
])
def test_compare_names_an_unknown_baseline_in_the_gate_s_sentence(
        results_db, tmp_path, monkeypatch, capsys, spec, sentence):
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        store.add_run([measured("fast", 1.0, 1000, 98.0, tag="v1", branch="main")],
                      command="edgecomp deploy")
    assert main(["compare", "--baseline", spec]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert sentence in err
    assert main(["gate", "--baseline", spec]) == 2
    assert sentence in " ".join(capsys.readouterr().err.split())


EVIL_TARGET = "lab\x1b]0;owned\x07\x1b[31m"  # retitles the terminal, turns it red
EVIL_FILE = "m.tflite\nerror: forged line\x9b2J"  # a line break and a C1 escape


def test_names_reach_the_terminal_escaped_and_the_store_and_json_exact(
        tmp_path, monkeypatch, capsys):
    """compare's table and bench/deploy's lines show what a terminal would obey escaped,
    so a name can neither colour nor retitle the terminal nor forge a line of a CI log;
    the store and --json keep each name exactly."""
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "r.db"))
    good = dataclasses.replace(record("m"), target=EVIL_TARGET, artifact_name=EVIL_FILE)
    failed = dataclasses.replace(record("m", error="lost\nerror: forged too"),
                                 target=EVIL_TARGET, artifact_name=EVIL_FILE)
    with Store() as store:
        store.add_run([good, failed], command="bench")
    assert main(["compare", "--failed", "--json", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert not {"\x1b", "\x07", "\x9b"} & set(out)
    assert "lab\\x1b]0;owned\\x07\\x1b[31m" in out
    assert {r["target"] for r in json.loads((tmp_path / "out.json").read_text())} == {
        EVIL_TARGET}
    with Store() as store:
        assert {r.artifact_name for r in store.records(include_failed=True)} == {EVIL_FILE}

    assert show_outcome([failed], command="bench", recorded=False, json_path=None) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("failed")]
    assert line == ("failed m.tflite\\nerror: forged line\\x9b2J: lost\\nerror: forged too")
    assert not any(line.startswith("error: forged") for line in err.splitlines())
