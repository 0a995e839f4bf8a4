"""A model is its name and its content: two different models whose factories share a name
stay apart in `compare`, deploy/bench tables and the report; `--name` sets the name; rows
say which run they come from and mark earlier runs' rows."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap

import pytest

from edgecomp.cli import main
from edgecomp.results.compare import compare_rows
from edgecomp.results.gate import judge
from edgecomp.results.verdicts import GateConfig
from edgecomp.results.report import build_report
from edgecomp.results.store import Store
from tests.results.records import manifest, record
from tests.results.test_report import page_text
from tests.tables import table_rows

FACTORY = textwrap.dedent("""
    import torch
    from torch import nn


    def make():
        torch.manual_seed({seed})
        model = nn.Sequential(nn.Linear(16, {hidden}), nn.ReLU(), nn.Linear({hidden}, 4))
        model.input_shape = (1, 16)
        return model
""")

# Small MLPs on random calibration data, exported to ONNX and timed briefly on `local`
# (the real agent): the model's identity is what is tested, not its speed.
FAST = ["--calib", "random", "--format", "onnx", "--target", "local", "--runs", "5",
        "--seconds", "0", "--warmup-runs", "1", "--warmup-seconds", "0", "--threads", "1"]


@pytest.fixture
def two_projects(tmp_path, monkeypatch):
    """Two folders, each with its own `netdef.py` defining `make()`: different models."""
    folders = []
    for name, seed, hidden in (("first", 1, 32), ("second", 2, 256)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "netdef.py").write_text(FACTORY.format(seed=seed, hidden=hidden))
        folders.append(folder)
    yield folders
    sys.modules.pop("netdef", None)


def deploy_in(folder, monkeypatch, *args: str) -> int:
    """`edgecomp deploy netdef:make` run from `folder`, as a user there would."""
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop("netdef", None)  # each folder's own module, as in its own process
    return main(["deploy", "netdef:make", *FAST, *args])


def rows_of(out: str, word: str) -> list[str]:
    """The rows of the first table in `out` that mention `word`, each its cells joined."""
    rows = [" │ ".join(row.values()) for row in table_rows(out)]
    return [row for row in rows if word in row]


@pytest.mark.parametrize("results_db", ["sqlite"], indirect=True)
def test_two_models_named_make_stay_apart_in_compare_bench_and_report(
        two_projects, results_db, tmp_path, monkeypatch, capsys):
    first, second = two_projects
    assert deploy_in(first, monkeypatch, "--json", str(tmp_path / "first.json")) == 0
    # Only int8 of the second: it must never get a speedup against the first's fp32.
    assert deploy_in(second, monkeypatch, "--precision", "dynamic-int8") == 0
    out = capsys.readouterr().out
    # The second deploy's table shows its own model only, in the run just recorded.
    (run_line,) = [line for line in out.splitlines()
                   if line.startswith("deploy: 1 artifact(s) measured in run ")]
    second_run = run_line.split("measured in run ")[1].split()[0]
    assert len(rows_of(out.split(run_line)[1], "netdef.make")) == 1

    first_records = json.loads((tmp_path / "first.json").read_text())
    assert {r["model"] for r in first_records} == {"netdef.make"}  # module and function
    first_run = first_records[0]["run_id"]
    assert first_run and first_run != second_run
    assert all(r["created_at"] for r in first_records)

    with Store() as store:
        records = store.records()
    contents = {r.manifest.model_sha256 for r in records}
    assert len(contents) == 2  # one name, two models
    first_sha = next(r.manifest.model_sha256 for r in records if r.run_id == first_run)
    second_sha = (contents - {first_sha}).pop()

    assert main(["compare", "--json", str(tmp_path / "compare.json")]) == 0
    out = capsys.readouterr().out
    first_rows = rows_of(out, f"netdef.make @{first_sha[:7]}")
    (second_row,) = rows_of(out, f"netdef.make @{second_sha[:7]}")
    assert len(first_rows) == 2
    (cells,) = [row for row in table_rows(out) if row["model"].endswith(second_sha[:7])]
    assert cells["speedup"] == "-"  # no fp32 of this model, none taken from the other
    assert second_run in second_row and "(earlier)" not in second_row
    assert all(first_run in row and "(earlier)" in row for row in first_rows)
    assert f"earlier run than run {second_run}" in " ".join(out.split())
    written = json.loads((tmp_path / "compare.json").read_text())
    assert {(r["run_id"], r["model"]) for r in written} == {(first_run, "netdef.make"),
                                                           (second_run, "netdef.make")}
    assert all(r["created_at"] for r in written)

    # Benching the first model's fp32 again: its table counts one artifact, shows the
    # int8 row measured before it, marked, and not the second model at all.
    fp32 = first / "edgecomp-out" / "netdef.make" / "netdef.make.fp32.onnx"
    assert main(["bench", str(fp32), *FAST[4:]]) == 0
    out = capsys.readouterr().out
    title = next(line for line in out.splitlines() if line.startswith("bench: "))
    assert "bench: 1 artifact(s) measured in run " in title
    assert "1 row(s) from earlier runs, marked (earlier)" in title
    rows = rows_of(out, "netdef.make")
    assert len(rows) == 2 and sum("(earlier)" in row for row in rows) == 1
    assert all("@" not in row for row in rows)  # one model here: its name alone

    with Store() as store:
        page, _ = page_text(build_report(store.records(with_samples=True)))
    assert f"netdef.make @{first_sha[:7]}" in page and f"netdef.make @{second_sha[:7]}" in page
    assert "Different models share the name netdef.make" in page
    assert first_run in page and second_run in page


@pytest.mark.parametrize("results_db", ["sqlite"], indirect=True)
def test_name_is_recorded_and_names_the_files(two_projects, results_db, tmp_path,
                                              monkeypatch, capsys):
    first, _ = two_projects
    assert deploy_in(first, monkeypatch, "--name", "alpha", "--precision", "fp32",
                     "--json", str(tmp_path / "alpha.json")) == 0
    (result,) = json.loads((tmp_path / "alpha.json").read_text())
    assert result["model"] == "alpha"
    artifact = first / "edgecomp-out" / "alpha" / "alpha.fp32.onnx"
    assert artifact.is_file()
    # bench --name: the records carry the name given; the file and manifest stay as they are
    assert main(["bench", str(artifact), "--name", "beta", "--json",
                 str(tmp_path / "beta.json"), *FAST[4:]]) == 0
    (result,) = json.loads((tmp_path / "beta.json").read_text())
    assert result["model"] == "beta"
    assert json.loads(artifact.with_name("alpha.fp32.onnx.json").read_text())["model"] == "alpha"
    capsys.readouterr()
    assert main(["compare", "--model", "beta"]) == 0
    assert len(rows_of(capsys.readouterr().out, "beta")) == 1


def foreign_onnx(path, seed: int) -> None:
    """Someone else's ONNX file (no manifest): one MatMul with weights drawn from `seed`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).standard_normal((16, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir()
    onnx.save(model, str(path))


@pytest.mark.parametrize("results_db", ["sqlite"], indirect=True)
def test_two_foreign_files_of_one_name_are_two_models(results_db, tmp_path, capsys):
    """`model.onnx` from two places: nothing says where either came from, so each file
    is its own model, even under one --name."""
    for index, folder in enumerate(("x", "y")):
        foreign_onnx(tmp_path / folder / "model.onnx", seed=index)
    for folder in ("x", "y"):
        assert main(["bench", str(tmp_path / folder / "model.onnx"), *FAST[4:]]) == 0
    assert main(["bench", str(tmp_path / "x" / "model.onnx"), "--name", "model",
                 *FAST[4:]]) == 0
    capsys.readouterr()
    assert main(["compare"]) == 0
    rows = [row for row in table_rows(capsys.readouterr().out) if "model @" in row["model"]]
    assert len(rows) == 2 and len({row["model"] for row in rows}) == 2


@pytest.mark.parametrize("command", [
    ["deploy", "--name", "../escape"],
    ["export", "netdef:make", "--name", "a b", "-o", "out"],
    ["compress", "--name", ".hidden", "--recipe", "fp16", "-o", "out"],
    ["bench", "missing.onnx", "--name", "x/y"],
])
def test_a_bad_name_is_refused_in_one_sentence(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "is not a usable model name: use 1 to 100 letters, digits and . _ -" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# The rules on records


def made(model: str, content: str, precision: str, p50: float, *, run: str,
         when: str = "2026-01-01T00:00:00+00:00"):
    base = record(model)
    return dataclasses.replace(
        base, source_sha256=content, precision=precision, run_id=run, created_at=when,
        manifest=manifest(model=model, model_sha256=content),
        latency_ms=dataclasses.replace(base.latency_ms, p50=p50))


def test_speedups_and_baselines_never_cross_models_of_one_name():
    rows = compare_rows([made("make", "a" * 64, "fp32", 2.0, run="r1"),
                         made("make", "b" * 64, "int8", 0.5, run="r2",
                              when="2026-01-02T00:00:00+00:00")])
    by_label = {row.model: row for row in rows}
    assert set(by_label) == {"make @aaaaaaa", "make @bbbbbbb"}
    assert by_label["make @bbbbbbb"].speedup is None
    assert by_label["make @aaaaaaa"].earlier and not by_label["make @bbbbbbb"].earlier
    # A recipe's artifacts come from a compressed model (another source) of the same
    # model: they share its identity and are compared with its fp32.
    compressed = dataclasses.replace(made("make", "a" * 64, "int8", 0.5, run="r1"),
                                     source_sha256="c" * 64, technique="prune")
    rows = compare_rows([made("make", "a" * 64, "fp32", 2.0, run="r1"), compressed])
    assert {row.model for row in rows} == {"make"}
    assert next(r for r in rows if r.record.technique == "prune").speedup == 4.0


def test_a_baseline_matches_a_new_release_but_not_a_namesake():
    old = made("make", "a" * 64, "fp32", 2.0, run="r1")
    release = made("make", "b" * 64, "fp32", 1.0, run="r2")
    (row,) = compare_rows([release], baseline=[old])
    assert row.baseline is old and row.change("p50") == -0.5
    rows = compare_rows([made("make", "a" * 64, "fp32", 1.0, run="r2"), release],
                        baseline=[old])
    by_label = {row.model: row for row in rows}
    assert by_label["make @aaaaaaa"].baseline is old
    assert by_label["make @bbbbbbb"].baseline is None  # another model sharing the name


def test_the_gate_judges_a_new_release_by_name_and_notes_the_new_content():
    old = made("m", "a" * 64, "fp32", 0.05, run="r1")
    new = made("m", "b" * 64, "fp32", 0.05, run="r2")
    checks = judge([old], [new], GateConfig())
    notes = [c for c in checks if c.verdict == "changed"]
    assert len(notes) == 1 and "aaaaaaa -> bbbbbbb" in notes[0].message
    assert notes[0].verdict.status == 0
    assert any(c.name == "latency p50" for c in checks)  # judged all the same
    assert not [c for c in judge([old], [old], GateConfig()) if c.verdict == "changed"]


def test_default_names_keep_the_module_of_a_factory():
    from edgecomp.model.source import factory_name

    assert factory_name("netdef:make") == "netdef.make"
    assert factory_name("examples.zoo.models:efficientnet_lite0") == "models.efficientnet-lite0"
    assert factory_name("first_models:make") != factory_name("second_models:make")


def test_a_factory_names_its_model_with_model_name(tmp_path, monkeypatch):
    """A factory may name the model it returns (`model_name`, as a zoo names its models);
    a name that could not be a file's stem is one sentence naming the attribute."""
    from edgecomp.errors import InputError
    from edgecomp.model.factory import load_factory

    (tmp_path / "named_models.py").write_text(textwrap.dedent("""
        import torch

        def make(name):
            model = torch.nn.Linear(4, 2)
            model.input_shape = (1, 4)
            if name is not None:
                model.model_name = name
            return model

        def good(): return make("my-linear")
        def plain(): return make(None)
        def bad(): return make("../up")
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    load = lambda spec: load_factory(spec, weights=None, input_shape=None, data=None)  # noqa: E731
    assert load("named_models:good").name == "my-linear"
    assert load("named_models:plain").name == "named-models.plain"
    with pytest.raises(InputError, match=r"^named_models:bad returned a model whose "
                                         r"model_name '\.\./up' is not a usable model name"):
        load("named_models:bad")
