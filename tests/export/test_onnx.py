"""The ONNX exporter against onnxruntime, on the trained demo CNN."""

from __future__ import annotations

import numpy as np
import pytest

from edgecomp.model.data import demo_digits
from edgecomp.export import get_exporter
from edgecomp.export.base import CalibrationMethod, ExportRequest, Precision
from edgecomp.hashing import file_sha256
from edgecomp.model.train import predict as float_outputs
from edgecomp.results.agreement import top1

pytestmark = pytest.mark.slow


def run_ort(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


@pytest.fixture(scope="module")
def exported(demo_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    calib = demo_digits("train").take(128)
    artifacts = {}
    for precision, method in [("fp32", "minmax"), ("int8", "minmax"), ("int8", "entropy"),
                              ("int8", "percentile"), ("dynamic-int8", "minmax")]:
        request = ExportRequest(
            module=demo_source.module, inputs=demo_source.inputs,
            model_name=f"demo-{method}", source_sha256=demo_source.sha256,
            precision=Precision(precision), out_dir=out,
            calib=calib if precision == "int8" else None,
            calibration_method=CalibrationMethod(method))
        artifacts[(precision, method)] = get_exporter("onnx").export(request)
    return artifacts


def test_every_variant_runs_in_onnxruntime_close_to_float(exported, demo_source):
    val = demo_digits("val")
    float_acc = top1(float_outputs(demo_source.module, val.x), val.y)
    for key, artifact in exported.items():
        acc = top1(run_ort(artifact.path, val.x), val.y)
        assert abs(acc - float_acc) <= 1.0, (key, acc, float_acc)


def test_static_int8_is_qdq_per_channel_and_small(exported):
    fp32 = exported[("fp32", "minmax")]
    int8 = exported[("int8", "minmax")]
    assert int8.size_bytes <= 0.3 * fp32.size_bytes
    assert int8.manifest.ops.get("QuantizeLinear", 0) > 0
    assert int8.manifest.integer_weight_share > 0.9
    import onnx
    from onnx import numpy_helper

    scales = [numpy_helper.to_array(i) for i in onnx.load(str(int8.path)).graph.initializer
              if i.name.endswith("weight_scale")]
    assert any(s.size > 1 for s in scales), "weights should carry one scale per channel"
    dynamic = exported[("dynamic-int8", "minmax")]
    assert dynamic.manifest.ops.get("DynamicQuantizeLinear", 0) > 0


def test_calibration_methods_differ_and_are_recorded(exported):
    digests = {method: file_sha256(exported[("int8", method)].path)
               for method in ("minmax", "entropy", "percentile")}
    assert len(set(digests.values())) == 3
    assert exported[("int8", "entropy")].manifest.calibration.method == "entropy"


def test_exported_model_carries_no_local_paths(exported):
    import onnx

    model = onnx.load(str(exported[("fp32", "minmax")].path))
    assert not any(node.metadata_props for node in model.graph.node)


def _activation_zero_points(path) -> list[int]:
    """Zero points of every QuantizeLinear node: the activations' (weights are stored int8)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    points = []
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2:
            points += initializers[node.input[2]].ravel().astype(int).tolist()
    return points


def test_symmetric_activations_have_zero_zero_points(tiny_request, tmp_path):
    exporter = get_exporter("onnx")
    affine = exporter.export(tiny_request(Precision.INT8, tmp_path / "affine"))
    symmetric = exporter.export(tiny_request(Precision.INT8, tmp_path / "symmetric",
                                             activation_symmetric=True))
    affine_points = _activation_zero_points(affine.path)
    symmetric_points = _activation_zero_points(symmetric.path)
    assert affine_points and symmetric_points
    assert any(point != 0 for point in affine_points)
    assert all(point == 0 for point in symmetric_points)
    assert symmetric.manifest.calibration.activation_symmetric is True
    assert affine.manifest.calibration.activation_symmetric is False


def test_uint8_activations_when_asked(tiny_request, tmp_path):
    import onnx
    from onnx import numpy_helper

    artifact = get_exporter("onnx").export(tiny_request(Precision.INT8, tmp_path / "u8",
                                                        activation_dtype="uint8"))
    graph = onnx.load(str(artifact.path)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    dtypes = {initializers[n.input[2]].dtype.name for n in graph.node
              if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    assert dtypes == {"uint8"}
    assert artifact.manifest.activation_dtype == "uint8"


BRANCHY = '''
import torch


class Branchy(torch.nn.Module):
    """Control flow on a tensor's value: torch.export cannot trace it."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


def make():
    return Branchy()
'''


def test_a_failed_onnx_export_is_reported_without_escape_codes(tmp_path):
    """torch.onnx colours its message (step 1/3 in cyan); edgecomp's sentence, printed and
    written, carries the text without the terminal codes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from edgecomp.errors import ExportError
    from edgecomp.model.signature import InputSpec

    (tmp_path / "branchy.py").write_text(BRANCHY)
    sys.path.insert(0, str(tmp_path))
    try:
        import branchy

        request = ExportRequest(module=branchy.make(), inputs=(InputSpec("x", (1, 4)),),
                                model_name="branchy", source_sha256="s",
                                precision=Precision.FP32, out_dir=tmp_path / "lib")
        with pytest.raises(ExportError) as info:
            get_exporter("onnx").export(request)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("branchy", None)
    assert "\x1b[" in str(info.value.__cause__)  # torch.onnx's own text has the codes
    assert "\x1b" not in str(info.value)
    assert "torch.onnx could not export branchy: Failed to export the model with " \
           "torch.export. This is step 1/3 of exporting" in str(info.value)

    root = Path(__file__).resolve().parents[2]
    log = tmp_path / "export.log"
    with log.open("w") as handle:  # the command's output going to a file, as in CI
        done = subprocess.run([sys.executable, "-m", "edgecomp.cli", "export", "branchy:make",
                               "--input-shape", "1,4", "--format", "onnx",
                               "--precision", "fp32",                               "-o", str(tmp_path / "out")], cwd=tmp_path, stdout=handle,
                              stderr=subprocess.STDOUT, timeout=300,
                              env={**os.environ, "PYTHONPATH": f"{root}:{tmp_path}"})
    text = log.read_text()
    assert done.returncode == 1, text
    assert "\x1b" not in text
    line = next(line for line in text.splitlines() if line.startswith("error:"))
    assert line.endswith(": Failed to export the model with torch.export. This is step 1/3 of "
                         "exporting the model to ONNX. Next steps:. Run with --debug for the "
                         "exporter's report.")  # the whole sentence on one line
