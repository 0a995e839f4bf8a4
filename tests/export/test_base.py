"""What every exporter shares: the manifest is strict JSON and artifacts stay in -o."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecomp.errors import InputError
from edgecomp.quantize.target import AgreementTarget, SearchLog, Tried
from tests.results.records import manifest
from edgecomp.export.base import ExportRequest, Precision, artifact_path, manifest_json
from edgecomp.model.signature import InputSpec


def test_a_manifest_never_holds_nan():
    tried = Tried(name="minmax", options={}, cosine=float("nan"), cosine_min=float("inf"),
                  size_bytes=3)
    made = manifest(precision="int8", search=SearchLog(target=AgreementTarget(), kept="minmax",
                                                       met=False, tried=(tried,)))
    text = manifest_json(made)
    assert "NaN" not in text and "Infinity" not in text
    (saved,) = json.loads(text)["search"]["tried"]
    assert saved["cosine"] is None and saved["cosine_min"] is None and saved["size_bytes"] == 3


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
