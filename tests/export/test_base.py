"""What every exporter shares: the manifest is strict JSON and artifacts stay in -o."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecomp.errors import InputError
from edgecomp.export.base import ExportRequest, Precision, artifact_path, manifest_json
from edgecomp.model.signature import InputSpec


def test_a_manifest_never_holds_nan():
    text = manifest_json({"search": [{"cosine": float("nan"), "size": 3}],
                          "max_abs_err": float("inf"), "ok": 0.5})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"search": [{"cosine": None, "size": 3}],
                                "max_abs_err": None, "ok": 0.5}


@pytest.mark.parametrize("model, technique", [("net", "x/../../escape"), ("../net", "none"),
                                              ("net", "..\\evil"), (".", "none")])
def test_an_artifact_is_never_named_outside_its_folder(tmp_path, model, technique):
    request = ExportRequest(module=None, inputs=(InputSpec("x", (1, 4)),), model_name=model,
                            source_sha256="0", precision=Precision.FP32,
                            out_dir=tmp_path / "out", technique=technique)
    with pytest.raises(InputError, match="is not a plain file name"):
        artifact_path(request, ".onnx")


def test_an_ordinary_artifact_name():
    request = ExportRequest(module=None, inputs=(InputSpec("x", (1, 4)),), model_name="net",
                            source_sha256="0", precision=Precision.INT8,
                            out_dir=Path("out"), technique="structured-50")
    assert artifact_path(request, ".tflite") == Path("out/net.structured-50.int8.tflite")
