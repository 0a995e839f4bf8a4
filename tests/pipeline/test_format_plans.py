"""A deploy that builds several formats builds and records each with that format's plan."""

from __future__ import annotations

import json

import torch

from edgecomp.hardware.board import Board
from edgecomp.cli import main
from edgecomp.model.facts import model_facts
from edgecomp.model.demo import DemoCNN
from edgecomp.pipeline.apply import apply_plan
from edgecomp.pipeline.request import DeployRequest
from edgecomp.hardware.facts import BoardFacts
from edgecomp.hardware.planner import make_plan
from edgecomp.hardware.profiles import load_profiles
from edgecomp.vocab import ActivationDtype, Format

QUICK = ["--runs", "5", "--seconds", "0.05", "--warmup-runs", "1", "--warmup-seconds", "0"]


def test_the_onnx_artifacts_take_the_onnx_plans_scheme():
    """A pi4 target that reports an x86 CPU (the simulated board): its plan is LiteRT's,
    while its ONNX plan (`plan --format onnx`) asks for uint8 activations on x86."""
    profile = load_profiles()["pi4"]
    facts = model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="demo-cnn")
    reported = BoardFacts(arch="x86_64", isa=frozenset({"avx2"}))
    plan = make_plan(profile, facts, board=reported)
    asked = make_plan(profile, facts, {"format": "onnx"}, board=reported)  # plan --format onnx
    assert plan.format == Format.TFLITE and plan.activation_dtype == ActivationDtype.INT8
    assert asked.activation_dtype == ActivationDtype.UINT8 and asked.reduce_range

    settings = apply_plan(DeployRequest(), plan, Board(name="b", target=None, profile=profile),
                          plan_for=lambda fmt: make_plan(profile, facts, board=reported,
                                                         for_format=fmt))
    assert set(settings.export.formats) == {"onnx", "tflite"}  # the demo builds both
    onnx = settings.export.for_format("onnx")
    assert onnx.activation_dtype == "uint8" and onnx.reduce_range
    tflite = settings.export.for_format("tflite")
    assert tflite.activation_dtype == "int8" and not tflite.reduce_range
    onnx_plan = settings.plans["onnx"]
    assert {k: v["value"] for k, v in onnx_plan.to_json()["decisions"].items()} == \
        {k: v["value"] for k, v in asked.to_json()["decisions"].items()}
    assert "format" not in onnx_plan.overridden  # planned for the format, not set by the user
    assert settings.by_format["onnx"].runtime == "onnxruntime"
    assert settings.by_format["tflite"].runtime == "ai_edge_litert"


def test_each_record_carries_its_formats_plan(tmp_path):
    out = tmp_path / "results.json"
    assert main(["deploy", *QUICK, "-o", str(tmp_path / "a"), "--json", str(out),
                 "--no-record"]) == 0
    results = json.loads(out.read_text())
    assert {r["format"] for r in results} == {"onnx", "tflite"}
    for record in results:
        decisions = record["plan"]["decisions"]
        assert decisions["format"]["value"] == record["format"]
        assert not decisions["format"]["overridden"]
        if record["format"] == "onnx" and record["precision"] == "int8":
            assert record["manifest"]["activation_dtype"] == \
                decisions["activation_dtype"]["value"]
