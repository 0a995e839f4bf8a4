"""bench --profile-ops on MobileNetV3-Small int8 in both runtimes: the profile says where
the time goes (the issue: int8 4-5x slower than fp32, with nothing saying why)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgecomp.cli import main
from examples.zoo import data as zoo_data
from examples.zoo import models as zoo

pytestmark = pytest.mark.slow


def test_the_architecture_is_mobilenet_v3_small():
    model = zoo.mobilenet_v3_small()
    assert sum(p.numel() for p in model.parameters()) == 2_542_856  # torchvision's count
    assert sum(isinstance(m, zoo.SqueezeExcite) for m in model.modules()) == 9


@pytest.fixture(scope="session")
def mobilenet_int8(tmp_path_factory):
    """int8 LiteRT and ONNX exports, calibrated on real photo crops; once per session."""
    folder = tmp_path_factory.mktemp("mobilenet")
    np.savez(folder / "calib.npz", **zoo_data.photos("calib", 16, 0))
    assert main(["export", "examples.zoo.models:mobilenet_v3_small", "--format", "tflite",
                 "--format", "onnx", "--precision", "int8", "--calib-size", "16",
                 "--calib", str(folder / "calib.npz"), "-o", str(folder / "out")]) == 0
    return folder / "out"


@pytest.fixture(scope="session")
def profiles(mobilenet_int8, tmp_path_factory):
    out = tmp_path_factory.mktemp("mobilenet-bench") / "r.json"
    assert main(["bench", *map(str, sorted(mobilenet_int8.glob("*.int8.*[!n]"))),
                 "--target", "local", "--profile-ops", "--runs", "10", "--seconds", "0.2",
                 "--warmup-seconds", "0.05", "--no-record", "--json", str(out)]) == 0
    return {r["format"]: r for r in json.loads(out.read_text())}


def test_litert_int8_profile_names_the_ops_left_out_of_xnnpack(profiles):
    profile = profiles["tflite"]["profile"]
    assert profile["reason"] is None and profile["ops"]
    outside = {op["op_type"] for op in profile["ops"] if not op["accelerated"]}
    # int8 HARD_SWISH runs on LiteRT's builtin kernels, not XNNPACK: most of the time.
    assert outside == {"HARD_SWISH"}, outside
    assert profile["outside_delegate_share"] > 0.3
    assert profile["top"][0]["op_type"] == "HARD_SWISH"


def test_onnxruntime_int8_profile_shows_quantize_dequantize_and_float_convs(profiles,
                                                                           mobilenet_int8):
    profile = profiles["onnx"]["profile"]
    types = {t["op_type"]: t["share"] for t in profile["by_type"]}
    assert {"QLinearConv", "QuantizeLinear", "DequantizeLinear", "Conv"} <= set(types)
    assert profile["data_movement_share"] > 0.2
    graph = {node.name for node in onnx.load(next(mobilenet_int8.glob("*mobilenet-v3-small.int8.onnx")))
             .graph.node}
    named = [op for op in profile["ops"] if op["name"] in graph]
    assert len(named) > len(profile["ops"]) / 2  # the graph's own node names
    assert abs(sum(t["share"] for t in profile["by_type"]) - 1.0) < 0.01
