"""Measured truth over planned truth on a real sshd board: what executed each artifact is
recorded and a plan naming an accelerator the board lacks is flagged; --profile-ops over
SSH carries the board runtime's per-op times."""

from __future__ import annotations

import json

import pytest
import torch

from edgecomp.hardware.board import Board
from edgecomp.cli import main
from edgecomp.model.facts import model_facts
from edgecomp.model.demo import DemoCNN
from edgecomp.pipeline.apply import apply_plan
from edgecomp.pipeline.request import DeployRequest
from edgecomp.hardware.planner import make_plan
from edgecomp.hardware.profiles import load_profiles

pytestmark = pytest.mark.slow

QUICK = ["--runs", "10", "--seconds", "0.1", "--warmup-seconds", "0.02", "--no-record"]


def test_a_jetson_plan_measured_on_a_board_without_tensorrt_is_flagged(board_factory,
                                                                       tmp_path):
    board = board_factory("sim-jetson", "--profile", "jetson-orin-nano")
    out = tmp_path / "r.json"
    assert main(["deploy", "--target", board.name, "--no-search", *QUICK,
                 "-o", str(tmp_path / "a"), "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {r["plan"]["decisions"]["delegate"]["value"] for r in records} == {"tensorrt"}
    onnx = [r for r in records if r["format"] == "onnx"]
    tflite = [r for r in records if r["format"] == "tflite"]
    assert onnx and tflite and all(r["error"] is None for r in records)
    for record in onnx:  # the plan's format: TensorRT asked for, the CPU ran it
        assert record["device"]["delegate"] == "CPUExecutionProvider"
        assert record["device"]["delegate_requested"] == "tensorrt"
        assert "no TensorrtExecutionProvider" in record["device"]["fallback"]
        # Verified where it was timed: the same provider, asked for TensorRT the same way.
        assert record["device"]["verification"]["delegate"] == "CPUExecutionProvider"
        assert record["device"]["verification"]["threads"] == record["threads"]
        assert any(f["kind"] == "not-as-planned"
                   and f["text"].startswith("the plan's tensorrt did not run")
                   for f in record["flags"])
    for record in tflite:  # the other format: XNNPACK on the CPU, while the plan says tensorrt
        assert record["device"]["delegate"] == "xnnpack"
        assert record["device"]["verification"]["delegate"] == "xnnpack"
        assert any(f["kind"] == "not-as-planned" and
                   "plan names the tensorrt delegate for onnx" in f["text"]
                   for f in record["flags"])


def test_a_delegate_the_user_set_fails_instead_of_falling_back():
    profile = load_profiles()["jetson-orin-nano"]
    facts = model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="cnn")
    board = Board(name="j", target=None, profile=profile)
    planned = apply_plan(DeployRequest(), make_plan(profile, facts), board)
    assert planned.by_format["onnx"].on_missing_delegate == "cpu"
    forced = apply_plan(DeployRequest(), make_plan(profile, facts, {"delegate": "tensorrt"}),
                        board)
    assert forced.by_format["onnx"].on_missing_delegate == "fail"


def test_bench_profile_ops_over_ssh(board, tmp_path, capsys):
    import litert_torch

    # Wide enough that each layer takes more than the profiler's 1 µs resolution.
    module = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.ReLU(),
                                 torch.nn.Linear(2048, 512)).eval()
    artifact = tmp_path / "wide.tflite"
    litert_torch.convert(module, (torch.zeros(1, 512),)).export(str(artifact))
    out = tmp_path / "r.json"
    assert main(["bench", str(artifact), "--target", board.name, "--profile-ops",
                 *QUICK, "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    profile = record["profile"]
    assert profile["reason"] is None and profile["runs"] >= 20
    assert {op["op_type"] for op in profile["ops"]} >= {"Fully Connected (NC, F32) GEMM"}
    assert abs(sum(op["share"] for op in profile["by_type"]) - 1.0) < 0.01
    assert profile["outside_delegate_share"] == 0.0
    printed = capsys.readouterr().out
    assert "per-op profile" in printed and "Fully Connected" in printed
