"""A user's own model: a factory with weights, and a torch.export program."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch

from edgecomp.cli import main

pytestmark = pytest.mark.slow

FACTORY = textwrap.dedent("""
    from torch import nn

    def make_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
""")


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "mypkg_models.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(tmp_path))
    from edgecomp.model.train import train_classifier
    from edgecomp.model.data import demo_digits

    namespace: dict = {}
    exec(FACTORY, namespace)
    net = train_classifier(namespace["make_net"](), demo_digits("train"), epochs=10, lr=3e-3)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("mypkg_models", None)


def test_deploy_a_factory_model_with_weights_and_data(project, digits_npz, capsys):
    calib, val = digits_npz
    code = main(["deploy", "mypkg_models:make_net", "--weights", "net.pt", "--calib", str(calib),
                 "--eval", str(val), "--target", "local", "--format", "tflite", "--runs", "20",
                 "--seconds", "0.1", "--warmup-seconds", "0", "-o", "out", "--json", "r.json"])
    assert code == 0
    results = json.loads((project / "r.json").read_text())
    assert {r["precision"] for r in results} == {"fp32", "int8"}
    for result in results:
        # The module and the function: two files' factories of one name stay apart.
        assert result["model"] == "mypkg-models.make-net" and result["accuracy"] > 85
        assert result["calib_source"] in (None, str(calib) + "[200 of 200]", str(calib))
    int8 = next(r for r in results if r["precision"] == "int8")
    assert int8["calib_sha256"] and abs(int8["accuracy_delta"]) <= 2.0


def test_export_a_torch_export_program(project, digits_npz):
    from edgecomp.model.demo import DemoCNN

    program = torch.export.export(DemoCNN().eval(), (torch.zeros(1, 1, 8, 8),))
    torch.export.save(program, project / "model.pt2")
    code = main(["export", "model.pt2", "--format", "tflite", "--precision", "int8",
                 "--calib", str(digits_npz[0]), "-o", "out"])
    assert code == 0
    manifest = json.loads((project / "out" / "model.int8.tflite.json").read_text())
    assert manifest["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert manifest["integer_weight_share"] > 0.9


def test_random_calibration_is_warned_and_recorded(project, caplog):
    code = main(["export", "mypkg_models:make_net", "--weights", "net.pt", "--input-shape",
                 "1,1,8,8", "--calib", "random", "--precision", "int8", "-o", "out"])
    assert code == 0
    assert any("random data" in r.getMessage() for r in caplog.records)
    manifest = json.loads((project / "out" / "mypkg-models.make-net.int8.tflite.json")
                          .read_text())
    assert manifest["calibration"]["source"].startswith("random")
