"""The planner: different hardware gives different choices, each with its reason."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from edgecomp.cli import main
from edgecomp.errors import InputError
from edgecomp.model.facts import model_facts
from edgecomp.model.demo import DemoCNN
from edgecomp.hardware.facts import BoardFacts
from edgecomp.hardware.plan import DECISIONS, parse_overrides
from edgecomp.hardware.planner import make_plan
from edgecomp.vocab import Format, Precision, PruningKind


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(128, 4, 256, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


class Huge(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16384), nn.ReLU(),
                                  nn.Linear(16384, 16384))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def transformer():
    return model_facts(TinyTransformer(), torch.zeros(1, 16, 128), name="transformer")


def decisions(plan):
    return {d.key: d.value for d in plan.decisions}


def test_model_facts(cnn, transformer):
    assert cnn.param_count == sum(p.numel() for p in DemoCNN().parameters())
    assert {"conv2d", "linear", "maxpool"} <= cnn.op_types and cnn.conv_share > 0.9
    assert "attention" in transformer.op_types and transformer.conv_share == 0.0
    assert cnn.macs > 1_000_000


def test_every_decision_has_a_reason(profiles, cnn):
    for profile in profiles.values():
        plan = make_plan(profile, cnn)
        for decision in plan.decisions:
            assert len(decision.reason) > 20, (profile.name, decision)


def test_cpu_boards_get_int8_with_reasons_that_name_the_isa(profiles, cnn):
    pi4, pi5 = make_plan(profiles["pi4"], cnn), make_plan(profiles["pi5"], cnn)
    assert decisions(pi4)["format"] == "tflite" and decisions(pi4)["delegate"] == "xnnpack"
    assert decisions(pi4)["precision"] == "int8" and decisions(pi5)["precision"] == "int8"
    reason = {d.key: d.reason for d in pi5.decisions}["precision"]
    assert "dot-product" in reason
    assert "without dot-product" in {d.key: d.reason for d in pi4.decisions}["precision"]
    assert decisions(pi4)["pruning"] == "channel" and decisions(pi4)["threads"] == 4


def test_phone_uses_gpu_fp16_and_big_cores(profiles, cnn):
    plan = make_plan(profiles["android-arm64"], cnn)
    d = decisions(plan)
    assert d["delegate"] == "gpu" and d["precision"] == "fp16"
    assert d["threads"] == 5 and "cortex-x3" in plan.reasons["threads"]
    assert any("NNAPI is deprecated" in w for w in plan.warnings)


def test_ampere_gets_int8_tensorrt_and_2_4_sparsity(profiles, cnn):
    orin, nano = (decisions(make_plan(profiles[n], cnn)) for n in ("jetson-orin-nano",
                                                                    "jetson-nano"))
    assert orin["runtime"] == "tensorrt" and orin["precision"] == "int8"
    assert orin["pruning"] == "2:4" and orin["channel_multiple"] == 16
    assert orin["activation_symmetric"] is True
    assert nano["precision"] == "fp16" and nano["pruning"] == "channel"


def test_x86_without_vnni_reduces_range(profiles, cnn, transformer):
    d = decisions(make_plan(profiles["x86-64"], cnn))
    assert d["format"] == "onnx" and d["reduce_range"] is True
    assert decisions(make_plan(profiles["x86-64"], transformer))["precision"] == "dynamic-int8"


def test_onnx_activations_are_uint8_on_x86_and_int8_on_arm(profiles, cnn):
    """onnxruntime's fast x86 int8 path is U8S8; ARM's is S8S8."""
    assert decisions(make_plan(profiles["x86-64"], cnn))["activation_dtype"] == "uint8"
    assert decisions(make_plan(profiles["pi4"], cnn, {"format": "onnx"}))[
        "activation_dtype"] == "int8"
    assert decisions(make_plan(profiles["x86-64"], cnn, {"format": "tflite"}))[
        "activation_dtype"] == "int8"


def test_unaccelerated_ops_are_a_warning(profiles, transformer):
    plan = make_plan(profiles["pi-zero-2w"], transformer)
    assert any("does not accelerate" in w and "layernorm" in w for w in plan.warnings)


def test_big_model_does_not_fit_the_zero(profiles):
    facts = model_facts(Huge(), torch.zeros(1, 1, 8, 8), name="huge")
    zero = make_plan(profiles["pi-zero-2w"], facts)
    assert zero.memory_fit == "too-large"
    assert any("does not fit" in w for w in zero.warnings)
    assert make_plan(profiles["jetson-orin-nano"], facts).memory_fit != "too-large"


def test_overrides_win_and_say_so(profiles, cnn):
    plan = make_plan(profiles["pi4"], cnn, {"precision": "fp16", "threads": "2"})
    by_key = {d.key: d for d in plan.decisions}
    assert by_key["precision"].value == "fp16" and by_key["precision"].overridden
    assert "planner would choose int8" in by_key["precision"].reason
    assert by_key["threads"].value == 2
    with pytest.raises(InputError, match="choose one of"):
        make_plan(profiles["pi4"], cnn, {"precision": "int3"})
    with pytest.raises(InputError, match="unknown decision"):
        make_plan(profiles["pi4"], cnn, {"colour": "red"})
    with pytest.raises(InputError, match="choose one of true, false"):
        parse_overrides(["reduce_range=yes"])
    with pytest.raises(InputError, match="positive integer"):
        parse_overrides(["threads=0"])
    assert parse_overrides(["activation_symmetric=true", "pruning=2:4"]) == {
        "activation_symmetric": True, "pruning": PruningKind.SPARSE_2_4}


def test_plan_values_are_typed(profiles, cnn):
    plan = make_plan(profiles["pi4"], cnn)
    assert isinstance(plan.format, Format) and isinstance(plan.precision, Precision)
    assert isinstance(plan.threads, int) and isinstance(plan.reduce_range, bool)
    assert {d.key for d in plan.decisions} == set(DECISIONS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.threads = 2


def test_board_facts_beat_the_profile(profiles, cnn):
    two_cores = BoardFacts(online_cores=2, isa=frozenset({"avx512-vnni"}), source="this machine")
    plan = make_plan(profiles["x86-64"], cnn, board=two_cores)
    assert plan.threads == 2 and "reports 2 online cores" in plan.reasons["threads"]
    assert plan.reduce_range is False and "VNNI" in plan.reasons["precision"]
    # A board whose cores match its profile keeps the profile's big.LITTLE reasoning.
    phone = make_plan(profiles["android-arm64"], cnn, board=BoardFacts(online_cores=8))
    assert phone.threads == 5


def test_inconsistent_runtime_override_is_refused(profiles, cnn):
    with pytest.raises(InputError, match="no runtime on pi4 fits"):
        make_plan(profiles["pi4"], cnn, {"runtime": "onnxruntime", "format": "tflite"})
    with pytest.raises(InputError, match="no runtime on pi4 fits"):
        make_plan(profiles["pi4"], cnn, {"delegate": "gpu"})
    # A runtime alone brings its own format and delegate.
    plan = make_plan(profiles["pi4"], cnn, {"runtime": "onnxruntime"})
    assert plan.format == "onnx" and plan.runtime == "onnxruntime" and plan.delegate == "cpu"


def test_plan_command_text_and_json(tmp_path, capsys):
    plans = {}
    for name in ("pi4", "pi5", "android-arm64", "jetson-orin-nano", "x86-64"):
        path = tmp_path / f"{name}.json"
        assert main(["plan", "--target", name, "--json", str(path)]) == 0
        plans[name] = json.loads(path.read_text())
        assert "reason" in capsys.readouterr().out
        for decision in plans[name]["decisions"].values():
            assert isinstance(decision["reason"], str) and decision["reason"]
    formats = {n: p["decisions"]["format"]["value"] for n, p in plans.items()}
    precisions = {n: p["decisions"]["precision"]["value"] for n, p in plans.items()}
    assert formats["pi4"] == "tflite" and formats["x86-64"] == "onnx"
    assert precisions["android-arm64"] == "fp16" and precisions["jetson-orin-nano"] == "int8"
    assert plans["jetson-orin-nano"]["decisions"]["pruning"]["value"] == "2:4"


def test_plan_for_unknown_target(capsys):
    assert main(["plan", "--target", "mars-rover"]) == 1
    assert "neither a target nor a profile" in capsys.readouterr().err
