"""The LiteRT exporter against the LiteRT interpreter, on the trained demo CNN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecomp.model.signature import InputSpec
from edgecomp.model.data import demo_digits
from edgecomp.errors import InputError
from edgecomp.export import get_exporter
from edgecomp.export.base import ExportRequest, Precision
from edgecomp.hashing import file_sha256
from edgecomp.model.train import predict as float_outputs
from edgecomp.results.agreement import top1

pytestmark = pytest.mark.slow


def run_litert(path, x: np.ndarray) -> np.ndarray:
    """Run every sample through the LiteRT interpreter, (de)quantizing int8 I/O."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for sample in x:
        value = sample[None]
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        result = interpreter.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            result = (result - zero) * scale
        outputs.append(result[0])
    return np.stack(outputs)


@pytest.fixture(scope="module")
def exported(demo_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    calib = demo_digits("train").take(256)
    artifacts = {}
    for precision, io in [("fp32", "float32"), ("int8", "float32"), ("int8", "int8"),
                          ("fp16", "float32"), ("dynamic-int8", "float32")]:
        request = ExportRequest(
            module=demo_source.module, inputs=demo_source.inputs,
            model_name="demo", source_sha256=demo_source.sha256, precision=Precision(precision),
            out_dir=out, calib=calib if precision == "int8" else None, io_dtype=io)
        artifacts[(precision, io)] = get_exporter("tflite").export(request)
    return artifacts


def test_every_precision_runs_in_litert_close_to_float(exported, demo_source):
    val = demo_digits("val")
    float_acc = top1(float_outputs(demo_source.module, val.x), val.y)
    for (precision, io), artifact in exported.items():
        acc = top1(run_litert(artifact.path, val.x), val.y)
        assert abs(acc - float_acc) <= 1.0, (precision, io, acc, float_acc)


def test_int8_is_really_integer_and_small(exported):
    fp32 = exported[("fp32", "float32")]
    for io in ("float32", "int8"):
        int8 = exported[("int8", io)]
        assert int8.size_bytes <= 0.3 * fp32.size_bytes
        assert int8.manifest.integer_weight_share > 0.95
        assert int8.manifest.inputs[0].dtype == io
    assert fp32.manifest.integer_weight_share == 0.0
    assert exported[("fp16", "float32")].manifest.weight_bytes_by_dtype.get("float16", 0) > 0


def test_manifest_describes_the_file(exported, demo_source):
    artifact = exported[("int8", "int8")]
    manifest = json.loads(artifact.manifest_path.read_text())
    assert manifest["sha256"] == file_sha256(artifact.path)
    assert manifest["source_sha256"] == demo_source.sha256
    assert manifest["calibration"]["samples"] == 256
    assert manifest["calibration"]["sha256"] == demo_digits("train").take(256).sha256
    assert manifest["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert "quantization" in manifest["inputs"][0]
    assert manifest["tools"]["litert-torch"].startswith("0.10")


def test_int8_without_calibration_is_refused_and_writes_nothing(demo_source, tmp_path):
    request = ExportRequest(module=demo_source.module, inputs=demo_source.inputs,
                            model_name="demo", source_sha256="x", precision=Precision.INT8,
                            out_dir=tmp_path)
    with pytest.raises(InputError, match="calibration"):
        get_exporter("tflite").export(request)
    assert list(tmp_path.iterdir()) == []


def test_onnx_source_cannot_become_litert(tmp_path):
    request = ExportRequest(module=None, inputs=(InputSpec("x", (1, 4)),), model_name="m",
                            source_sha256="x", precision=Precision.FP32, out_dir=tmp_path)
    with pytest.raises(InputError, match="ONNX"):
        get_exporter("tflite").export(request)


def _int8_zero_points(path) -> list[int]:
    from ai_edge_litert.interpreter import Interpreter

    points = []
    for detail in Interpreter(model_path=str(path)).get_tensor_details():
        if detail["dtype"] == np.int8:
            points += detail["quantization_parameters"]["zero_points"].astype(int).tolist()
    return points


def test_symmetric_activations_have_zero_zero_points(tiny_request, tmp_path):
    exporter = get_exporter("tflite")
    affine = exporter.export(tiny_request(Precision.INT8, tmp_path / "affine", io_dtype="int8"))
    symmetric = exporter.export(tiny_request(Precision.INT8, tmp_path / "symmetric",
                                             io_dtype="int8", activation_symmetric=True))
    assert any(point != 0 for point in _int8_zero_points(affine.path))
    assert all(point == 0 for point in _int8_zero_points(symmetric.path))
    assert symmetric.manifest.calibration.activation_symmetric is True
