"""An artifact read back from disk: a FIFO or a malformed manifest beside a stranger's
artifact is refused in a sentence, never read blocking or half understood."""

from __future__ import annotations

import json
import os

import pytest

from edgecomp.errors import InputError
from edgecomp.export.bundle import artifact_from_file
from edgecomp.hashing import file_sha256


def test_a_fifo_named_like_an_artifact_is_refused(tmp_path):
    os.mkfifo(tmp_path / "model.tflite")
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        artifact_from_file(tmp_path / "model.tflite")


@pytest.mark.parametrize("manifest", [
    [], {"sha256": "SHA"}, {"sha256": "SHA", "precision": "int3"},
    {"sha256": "SHA", "precision": "fp32", "inputs": [{}]},
    {"sha256": "SHA", "precision": "fp32", "inputs": [{"name": "x", "shape": [1],
                                                        "dtype": "no-such-dtype"}]},
])
def test_a_malformed_manifest_is_refused(tmp_path, manifest):
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"\x08\x07")
    text = json.dumps(manifest).replace("SHA", file_sha256(artifact))
    (tmp_path / "model.onnx.json").write_text(text)
    with pytest.raises(InputError, match="is not an edgecomp manifest"):
        artifact_from_file(artifact)
