"""deploy as a library call: typed stages, every plan decision applied, failures as records."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import torch

from edgecomp.hardware.board import Board, resolve_board
from edgecomp.pipeline.compress import fill_recipe
from edgecomp.cli import main
from edgecomp.compress.recipe import parse_recipe
from edgecomp.errors import DeviceError
from edgecomp.model.facts import model_facts
from edgecomp.model.demo import DemoCNN
from edgecomp.pipeline.apply import apply_plan
from edgecomp.pipeline.deploy import deploy
from edgecomp.pipeline.request import DeployRequest, MeasureChoices, ModelSpec
from edgecomp.hardware.plan import DECISIONS
from edgecomp.hardware.planner import make_plan
from edgecomp.hardware.profiles import load_profiles
from edgecomp.pipeline.measure import MeasureData, measure_all

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--runs", "5", "--seconds", "0.05", "--warmup-runs", "1", "--warmup-seconds", "0"]

# For each decision: a profile, the overrides it needs to be consistent, and a value the
# planner would not choose there.
OVERRIDES = {
    "format": ("pi4", {}, "onnx"),
    "runtime": ("jetson-orin-nano", {}, "onnxruntime"),
    "delegate": ("android-arm64", {}, "xnnpack"),
    "precision": ("pi4", {}, "fp16"),
    "quant_scheme": ("pi4", {}, "per_tensor_symmetric"),
    "activation_symmetric": ("pi4", {}, "true"),
    "activation_dtype": ("pi4", {}, "uint8"),
    "io_dtype": ("pi4", {}, "int8"),
    "reduce_range": ("pi4", {}, "true"),
    "pruning": ("pi4", {}, "2:4"),
    "channel_multiple": ("pi4", {}, "32"),
    "threads": ("pi4", {}, "1"),
}
GENERIC_PRUNE = parse_recipe('name = "generic"\n[[pass]]\nname = "prune"\namount = 0.5\n',
                             source="generic.toml", default_name="generic")


def test_every_decision_has_an_override_case():
    assert set(OVERRIDES) == set(DECISIONS)


@pytest.mark.parametrize("key", sorted(OVERRIDES))
def test_every_decision_changes_what_is_built_or_measured(key):
    """A decision nobody applies would build and measure the same thing when overridden."""
    profile_name, needed, value = OVERRIDES[key]
    profile = load_profiles()[profile_name]
    facts = model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="cnn")
    board = Board(name=profile_name, target=None, profile=profile)
    request = DeployRequest(model=ModelSpec("pkg.mod:make"))
    applied = []
    for overrides in (needed, {**needed, key: value}):
        plan = make_plan(profile, facts, overrides)
        settings = apply_plan(request, plan, board)
        applied.append((settings.export, dict(settings.by_format), settings.measure,
                        fill_recipe(GENERIC_PRUNE, plan).passes))
    assert applied[0] != applied[1], f"--set {key}={value} changed nothing"


def test_plan_fills_the_generic_prune_pass():
    profile = load_profiles()["jetson-orin-nano"]
    facts = model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="cnn")
    plan = make_plan(profile, facts)
    (name, options), = fill_recipe(GENERIC_PRUNE, plan).passes
    assert name == "prune" and options["kind"] == "2:4" and options["round_to"] == 16
    explicit = parse_recipe('name = "x"\n[[pass]]\nname = "prune.structured"\nround_to = 4\n',
                            source="x.toml", default_name="x")
    assert fill_recipe(explicit, plan).passes[0][1]["round_to"] == 4  # the recipe's own value
    forced = make_plan(profile, facts, {"channel_multiple": "32"})
    assert fill_recipe(explicit, forced).passes[0][1]["round_to"] == 32  # --set wins


def test_target_runtime_measures_its_format():
    """A target file's `runtime` is what measures artifacts of the format it loads."""
    profile = load_profiles()["pi4"]
    facts = model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="cnn")
    plan = make_plan(profile, facts)
    target = type("T", (), {"runtime": "tflite_runtime", "lock_timeout": 5.0})()
    settings = apply_plan(DeployRequest(), plan, Board(name="b", target=target, profile=profile))
    tflite = settings.by_format["tflite"]
    assert tflite.runtime == "tflite_runtime" and tflite.lock_timeout == 5.0
    assert tflite.threads == 4 and tflite.throttle_c == profile.thermal.throttle_c
    flag = apply_plan(DeployRequest(measure=MeasureChoices(runtime="onnxruntime")), plan,
                      Board(name="b", target=target, profile=profile))
    assert flag.by_format["onnx"].runtime == "onnxruntime"
    assert flag.by_format["tflite"].runtime == "ai_edge_litert"  # the plan's, for its format


def test_set_threads_is_what_the_agent_used(tmp_path):
    out = tmp_path / "results.json"
    assert main(["deploy", "--target", "local", "--set", "threads=1", "--set", "format=tflite",
                 "--set", "precision=fp32", *QUICK, "-o", str(tmp_path / "a"),
                 "--json", str(out), "--no-record"]) == 0
    results = json.loads(out.read_text())
    assert {(r["format"], r["precision"]) for r in results} == {("tflite", "fp32")}
    assert [r["threads"] for r in results] == [1]
    assert results[0]["plan"]["decisions"]["threads"] == {
        "value": 1, "overridden": True, "reason": results[0]["plan"]["decisions"]["threads"][
            "reason"]}


def test_int9_recipe_is_refused_before_anything_is_written(tmp_path, capsys):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('name = "bad"\n[[pass]]\nname = "fold"\n[export]\nprecision = "int9"\n')
    db = Path(__import__("os").environ["EDGECOMP_DB"])
    before = _rows(db)
    assert main(["deploy", "--target", "local", "--recipe", str(recipe), *QUICK,
                 "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bad.toml" in err and "precision" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and _rows(db) == before


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM results").fetchone()[0]


def test_a_board_failure_is_a_failed_record_and_the_others_are_kept(tmp_path):
    """An SFTP/SSH error while verifying one artifact does not abort the sweep."""
    import paramiko

    from edgecomp.pipeline.build import ExportSettings, export_all, prepare
    from edgecomp.pipeline.request import DataSpec
    from edgecomp.pipeline.agent import MeasureOptions
    from edgecomp.remote.local import LocalTransport
    from edgecomp.model.demo import demo_model
    from edgecomp.vocab import Precision

    source = demo_model()
    prepared = prepare(source, DataSpec(calib="digits:train", eval="digits:val",
                                        calib_size=64, eval_size=50), needs_calib=True)
    artifacts = export_all(prepared, ExportSettings(formats=("tflite",),
                                                precisions=(Precision.FP32, Precision.INT8)),
                           tmp_path)

    class FlakyLink(LocalTransport):
        """The real local agent, whose link drops on the second artifact's evaluation set."""

        calls = 0

        def run_agent(self, args, *, what):
            if args[0] == "run":
                FlakyLink.calls += 1
                if FlakyLink.calls == 2:
                    raise paramiko.SSHException("SFTP channel closed")
            return super().run_agent(args, what=what)

    options = MeasureOptions(runs=5, seconds=0.05, warmup_runs=1, warmup_seconds=0.0)
    with FlakyLink() as transport:
        records = measure_all(artifacts, transport, lambda artifact: options,
                              MeasureData(prepared))
    assert [r.ok for r in records] == [True, False]
    assert "SFTP channel closed" in records[1].error and records[1].latency_ms is None
    assert records[0].accuracy is not None and records[0].latency_ms.count >= 5


def test_unknown_target_is_one_sentence():
    with pytest.raises(Exception) as info:
        resolve_board("mars-rover")
    assert "neither a target nor a profile" in str(info.value)
    assert not isinstance(info.value, DeviceError)


@pytest.mark.slow
def test_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (our own README)
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 4 and {line[3] for line in lines} == {"1"}
    assert (tmp_path / "edgecomp-out" / "api-demo").is_dir()


@pytest.mark.slow
def test_generic_prune_follows_the_plan_end_to_end(tmp_path):
    """`--set pruning=2:4` turns the recipe's generic prune into 2:4 sparsity; the default
    plan for this machine removes channels, rounded to its channel multiple."""
    recipe = tmp_path / "generic.toml"
    recipe.write_text('name = "generic"\n[[pass]]\nname = "prune"\namount = 0.5\n'
                      'finetune_epochs = 0\n')
    built = {}
    for extra in ([], ["pruning=2:4"]):
        request = DeployRequest(
            target="local", recipe=str(recipe), baseline=False, record=False,
            overrides={"format": "tflite", "precision": "fp32",
                       **dict(item.split("=") for item in extra)},
            measure=MeasureChoices(runs=5, seconds=0.05, warmup_runs=1, warmup_seconds=0),
            out_dir=tmp_path / f"out{len(extra)}")
        records = deploy(request)
        report = records[0].recipe.reports[0]
        built[bool(extra)] = report
    channel, sparse = built[False], built[True]
    assert channel.params["pass"] == "prune.structured"
    multiple = channel.params["round_to"]
    assert all(after % multiple == 0 for _, after in channel.metrics["channels"].values()
               if after != 10)
    assert sparse.params["pass"] == "prune.nm"
    assert "layer_sparsity" in sparse.metrics
