"""--input-shape NAME=DIMS fixes a model's open dimensions by input name (one-input form
kept), and a factory whose inputs cannot be worked out gets one sentence, never a
traceback."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgecomp.errors import InputError
from edgecomp.model.signature import InputSpec, fix_shapes
from edgecomp.model.load import load_model
from edgecomp.model.signature import parse_input_shapes
from tests.user_cli import cli, error_line

QUICK = ["--runs", "5", "--seconds", "0.05", "--warmup-runs", "1", "--warmup-seconds", "0"]


@pytest.fixture(scope="module")
def silero_onnx() -> Path:
    from examples.zoo.models import silero_vad_onnx_path

    pytest.importorskip("silero_vad")
    return silero_vad_onnx_path()


def test_silero_vad_benched_with_its_input_length_chosen_by_name(silero_onnx, tmp_path):
    """At the one-sample size bench used to pick, silero-vad cannot run; with the input
    length named (and its 16 kHz rate given) it is measured, and nothing is set silently."""
    unset = cli(tmp_path, "bench", str(silero_onnx), "--no-record", *QUICK)
    assert unset.returncode == 1 and "Traceback" not in unset.stderr
    warnings = [line for line in unset.stderr.splitlines() if "open dimensions" in line]
    assert warnings == [
        "WARNING edgecomp.model.signature: silero_vad.onnx: open dimensions set to 1: "
        "input [-1, -1] -> [1, 1]; state [2, -1, 128] -> [2, 1, 128]; choose them with "
        "--input-shape NAME=DIMS or give data"]
    assert "failed silero_vad.onnx" in unset.stderr

    chosen = cli(tmp_path, "bench", str(silero_onnx), "--input-shape", "input=1,512",
                 "--input-value", "sr=16000", "--no-record", "--json", "r.json", *QUICK)
    assert chosen.returncode == 0, chosen.stderr
    assert "open dimensions set to 1: state [2, -1, 128] -> [2, 1, 128]" in chosen.stderr
    assert "input [-1, -1]" not in chosen.stderr
    (record,) = json.loads((tmp_path / "r.json").read_text())
    assert record["error"] is None and record["latency_ms"]["p50"] > 0


@pytest.mark.parametrize("flags, needle", [
    (["--input-shape", "audio=1,512"], "silero_vad.onnx has no input named 'audio'; its "
     "inputs are input float32[-1, -1], state float32[2, -1, 128], sr int64[]."),
    (["--input-shape", "input=512"], "--input-shape input=512 has 1 dimensions, but "
     "silero_vad.onnx's input 'input' has 2"),
    (["--input-shape", "input=0,512"], "--input-shape input=0,512 is not a shape of "
     "positive sizes"),
    (["--input-shape", "state=4,1,128"], "dimension 0 of silero_vad.onnx's input 'state' "
     "is fixed at 2 in the model"),
    (["--input-shape", "1,512"], "silero_vad.onnx takes 3 inputs"),
    (["--input-shape", "input=1,512", "--input-shape", "input=1,256"], "names 'input' twice"),
    (["--input-shape", "input=1,512", "--input-shape", "state=2,1,128", "--input-value",
      "sr=16000.5"], "'sr' takes int64, so give a whole number"),
])
def test_wrong_input_shapes_are_refused_in_one_sentence(silero_onnx, tmp_path, flags, needle):
    line = error_line(cli(tmp_path, "bench", str(silero_onnx), "--no-record", *flags, *QUICK))
    assert needle in line


def _reshaping_onnx(path: Path) -> Path:
    """x[batch, n] reshaped to (1, 3, 4): it runs only when n is 12."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["r"]),
         helper.make_node("ReduceSum", ["r"], ["y"], keepdims=0)],
        "reshaping", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [helper.make_tensor("shape", TensorProto.INT64, [3], [1, 3, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_deploy_times_an_onnx_model_at_the_chosen_size(tmp_path):
    """deploy without data measures the ONNX file at the dimensions --input-shape chose
    (the bare one-input form), not at 1."""
    model = _reshaping_onnx(tmp_path / "reshaping.onnx")
    args = ["deploy", str(model), "--format", "onnx", "--precision", "fp32", "--no-record",
            "-o", "out", "--json", "r.json", *QUICK]
    at_one = cli(tmp_path, *args)
    assert at_one.returncode == 1 and "x [-1, -1] -> [1, 1]" in at_one.stderr
    assert "failed while running reshaping.fp32.onnx" in at_one.stderr  # n = 1 cannot reshape
    done = cli(tmp_path, *args, "--input-shape", "1,12")
    assert done.returncode == 0, done.stderr
    assert [r["error"] for r in json.loads((tmp_path / "r.json").read_text())] == [None]


FACTORIES = textwrap.dedent("""
    import torch
    from torch import nn

    class Varargs(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(16, 2)

        def forward(self, *args):
            return self.linear(args[0])

    class KerasLike(Varargs):
        '''Like a Keras 3 model on the torch backend: forward(*args, **kwargs), and an
        input_shape that raises until the model is built, or has an open batch size.'''

        def __init__(self, shape):
            super().__init__()
            self._shape = shape

        def forward(self, *args, **kwargs):
            return self.linear(args[0])

        @property
        def input_shape(self):
            if self._shape is None:
                raise ValueError("The layer has never been called")
            return self._shape

    class TwoInputs(nn.Module):
        def forward(self, audio, state):
            return audio.sum() + state.sum()

    def varargs():
        return Varargs()

    def keras_unbuilt():
        return KerasLike(None)

    def keras_built():
        return KerasLike((None, 16))

    def keras_multi():
        return KerasLike([(None, 16), (None, 4)])

    def two_inputs():
        return TwoInputs()

    def raises():
        raise ValueError("weights not found at /data/ckpt")

    def not_a_module():
        return {"model": Varargs()}
""")


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text(FACTORIES)
    (tmp_path / "brokenmodels.py").write_text("import torch\nraise RuntimeError('CUDA not "
                                              "available')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("usermodels", "brokenmodels"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("factory, needle", [
    ("usermodels:varargs", "the inputs of usermodels:varargs are unknown: pass --input-shape"),
    ("usermodels:keras_unbuilt", "the inputs of usermodels:keras_unbuilt are unknown: pass "
     "--input-shape"),
    ("usermodels:keras_multi", "the model's input_shape attribute is [(None, 16), (None, 4)], "
     "not one shape"),
    ("usermodels:raises", "model factory usermodels:raises raised ValueError: weights not "
     "found at /data/ckpt"),
    ("usermodels:not_a_module", "usermodels:not_a_module returned dict, not a "
     "torch.nn.Module"),
    ("brokenmodels:make", "importing model factory brokenmodels:make failed: RuntimeError: "
     "CUDA not available"),
])
def test_factories_edgecomp_cannot_use_get_one_sentence(project, factory, needle):
    assert needle in error_line(cli(project, "export", factory, "-o", "out"))
    assert not (project / "out").exists()


def test_a_factory_with_an_open_batch_size_is_exported_at_batch_1(project):
    done = cli(project, "export", "usermodels:keras_built", "--format", "onnx",
               "--precision", "fp32", "-o", "out")
    assert done.returncode == 0, done.stderr
    assert "usermodels:keras_built: open dimensions set to 1: input [-1, 16] -> [1, 16]" \
        in done.stderr
    (onnx_file,) = (project / "out").glob("*.onnx")
    dims = onnx.load(onnx_file).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 16]


def test_factory_inputs_by_name(project):
    source = load_model("usermodels:two_inputs",
                        input_shape=parse_input_shapes(["state=2,1,8", "audio=1,512"]))
    assert source.inputs == (InputSpec("audio", (1, 512)), InputSpec("state", (2, 1, 8)))
    source = load_model("usermodels:varargs", input_shape=parse_input_shapes(["1,16"]))
    assert source.inputs == (InputSpec("input", (1, 16)),)
    with pytest.raises(InputError, match="names audio, hidden, but the model's forward takes "
                                         "audio, state"):
        load_model("usermodels:two_inputs",
                   input_shape=parse_input_shapes(["audio=1,512", "hidden=1"]))


def test_fix_shapes_changes_open_dimensions_only():
    specs = (InputSpec("input", (-1, -1)), InputSpec("sr", (), "int64"))
    assert fix_shapes(specs, {"input": (1, 512)}, model="m") == (
        InputSpec("input", (1, 512)), InputSpec("sr", (), "int64"))
    assert fix_shapes(specs, None, model="m") == specs
    with pytest.raises(InputError, match="only its open"):
        fix_shapes((InputSpec("x", (1, 3, 224, 224)),), (1, 3, 256, 256), model="m")
    with pytest.raises(InputError, match="has 1 dimensions, but m's input 'sr' has 0"):
        fix_shapes(specs, {"sr": (1,)}, model="m")
    assert np.prod(fix_shapes((InputSpec("x", (-1, 3)),), (4, 3), model="m")[0].shape) == 12
