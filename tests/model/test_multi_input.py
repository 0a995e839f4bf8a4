"""Models with several inputs of any dtype and several outputs, through every stage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgecomp.cli import main
from edgecomp.model.data import load_npz, make_dataset
from edgecomp.errors import InputError
from edgecomp.model.signature import InputSpec, bind, resolve, sample
from edgecomp.pipeline import agent
from edgecomp.pipeline.agent import MeasureOptions

QUICK = ["--runs", "10", "--seconds", "0.05", "--warmup-seconds", "0", "--no-record"]

MODULE = '''
import torch
from torch import nn


class Tagger(nn.Module):
    """Token ids (int64) with a float feature vector in; two outputs: scores and a gate."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 16)
        self.features = nn.Linear(8, 16)
        self.head = nn.Linear(16, 5)
        self.gate = nn.Linear(16, 1)
        self.example_inputs = (torch.zeros(1, 6, dtype=torch.int64), torch.zeros(1, 8))

    def forward(self, ids, feats):
        h = torch.relu(self.embed(ids).mean(dim=1) + self.features(feats))
        return self.head(h), torch.sigmoid(self.gate(h))


def tagger():
    return Tagger().eval()


class NoDeclaredInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(2, 3)

    def forward(self, left, right):
        return self.a(left) - self.b(right)


def two_arrays():
    return NoDeclaredInputs().eval()
'''


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "multimodels.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("multimodels", None)
    rng = np.random.default_rng(0)
    for name, count in (("calib", 64), ("eval", 40)):
        np.savez(tmp_path / f"{name}.npz", ids=rng.integers(0, 50, (count, 6)),
                 feats=rng.standard_normal((count, 8)).astype(np.float32))
    return tmp_path


@pytest.mark.slow
def test_int_and_float_inputs_with_two_outputs_deploy_in_both_formats(project):
    code = main(["deploy", "multimodels:tagger", "--calib", "calib.npz", "--eval", "eval.npz",
                 "--target", "local", "--set", "precision=int8", "--format", "onnx",
                 "--format", "tflite", "-o", "out", "--json", "r.json", *QUICK])
    records = json.loads(Path("r.json").read_text())
    assert code in (0, 3), records
    assert {(r["format"], r["precision"]) for r in records} >= {("onnx", "fp32"),
                                                                 ("tflite", "fp32")}
    for record in records:
        assert record["error"] is None, record["error"]
        manifest = record["manifest"]
        assert [i["name"] for i in manifest["inputs_fed"]] == ["ids", "feats"]
        assert [i["dtype"] for i in manifest["inputs_fed"]] == ["int64", "float32"]
        agreement = record["agreement"]
        assert len(agreement["outputs"]) == 2  # both outputs compared, each its own numbers
        if record["precision"] == "fp32":
            assert agreement["cosine"] > 0.9999 and agreement["decision"] == 100.0
            assert agreement["outputs"][1]["mean_abs_err"] < 1e-4
        else:
            assert agreement["cosine"] > 0.9
    onnx_inputs = [i["dtype"] for i in next(r for r in records if r["format"] == "onnx")
                   ["manifest"]["inputs"]]
    assert onnx_inputs == ["int64", "float32"]


def test_a_factory_without_declared_inputs_takes_them_from_named_arrays(project):
    rng = np.random.default_rng(1)
    np.savez(project / "pair.npz", left=rng.random((5, 4), dtype=np.float32),
             right=rng.random((5, 2), dtype=np.float32))
    from edgecomp.model.load import load_model
    from edgecomp.model.source import check_data

    data = load_npz(project / "pair.npz")
    source = load_model("multimodels:two_arrays", data=data)
    assert [(s.name, s.shape) for s in source.inputs] == [("left", (1, 4)), ("right", (1, 2))]
    bound = check_data(source, data, what="evaluation")
    left, right = sample(bound, source.inputs, 3)
    assert left.shape == (1, 4) and np.array_equal(right[0], data.arrays["right"][3])


def test_data_that_does_not_fit_the_inputs_is_one_sentence(project):
    from edgecomp.model.load import load_model

    source = load_model("multimodels:tagger")
    rng = np.random.default_rng(2)
    wrong_names = make_dataset({"tokens": rng.integers(0, 9, (3, 6)),
                                "feats": rng.random((3, 8))}, None, source="d.npz")
    with pytest.raises(InputError, match="name one array after each model input"):
        bind(wrong_names, source.inputs, what="calibration")
    only_x = make_dataset(rng.random((3, 8)), None, source="x.npz")
    with pytest.raises(InputError, match="holds one input"):
        bind(only_x, source.inputs, what="calibration")
    fractional_ids = make_dataset({"ids": rng.random((3, 6)) * 10,
                                   "feats": rng.random((3, 8))}, None, source="f.npz")
    with pytest.raises(InputError, match="fractional values for 'ids'"):
        bind(fractional_ids, source.inputs, what="calibration")
    bad_shape = make_dataset({"ids": rng.integers(0, 9, (3, 7)),
                              "feats": rng.random((3, 8))}, None, source="s.npz")
    with pytest.raises(InputError, match="shape"):
        bind(bad_shape, source.inputs, what="evaluation")


def test_open_dimensions_and_scalars_are_fixed_by_the_data():
    specs = (InputSpec("audio", (-1, -1)), InputSpec("state", (2, -1, 8)),
             InputSpec("sr", (), "int64"))
    data = make_dataset({"audio": np.zeros((4, 100), np.float32),
                         "state": np.zeros((4, 2, 1, 8), np.float32),
                         "sr": np.full(4, 16000)}, None, source="vad.npz")
    resolved = resolve(specs, data)
    assert [s.shape for s in resolved] == [(1, 100), (2, 1, 8), ()]
    bound = bind(data, resolved, what="evaluation")
    audio, state, sr = sample(bound, resolved, 2)
    assert audio.shape == (1, 100) and state.shape == (2, 1, 8)
    assert sr.shape == () and sr.dtype == np.int64 and int(sr) == 16000


def test_an_onnx_model_with_three_inputs_runs_in_the_agent(tmp_path):
    """A recurrent-style ONNX graph (audio, state, an int64 scalar) with two outputs, fed by
    the agent from stored samples; its outputs match onnxruntime run directly."""
    import onnxruntime as ort

    from edgecomp.remote.local import LocalTransport
    from edgecomp.model.signature import stacked
    from edgecomp.model.load import load_model

    class Step(nn.Module):
        def forward(self, audio, state, sr):
            new_state = torch.tanh(state + audio.mean())
            return torch.sigmoid(audio.sum(dim=1, keepdim=True) / sr.float()), new_state

    path = tmp_path / "step.onnx"
    torch.onnx.export(Step(), (torch.zeros(1, 10), torch.zeros(2, 1, 4),
                               torch.tensor(16000)), str(path), dynamo=True,
                      input_names=["audio", "state", "sr"], output_names=["prob", "stateN"])
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "d.npz", audio=rng.standard_normal((6, 10)).astype(np.float32),
             state=rng.standard_normal((6, 2, 1, 4)).astype(np.float32),
             sr=np.full(6, 16000, dtype=np.int64))
    data = load_npz(tmp_path / "d.npz")
    source = load_model(str(path), data=data)
    assert [s.dtype for s in source.inputs] == ["float32", "float32", "int64"]
    from edgecomp.model.source import check_data

    bound = check_data(source, data, what="evaluation")
    with LocalTransport() as transport:
        prob, state = agent.outputs(transport, path, stacked(bound, source.inputs),
                                    MeasureOptions())[0]
    session = ort.InferenceSession(str(path))
    for index in range(6):
        feed = dict(zip(["audio", "state", "sr"], sample(bound, source.inputs, index)))
        want_prob, want_state = session.run(None, feed)
        assert np.allclose(prob[index], want_prob, atol=1e-6)
        assert np.allclose(state[index], want_state, atol=1e-6)
