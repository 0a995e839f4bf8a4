"""An artifact read back from disk: a FIFO or a malformed manifest beside a stranger's
artifact is refused in a sentence, never read blocking or half understood."""

from __future__ import annotations

import json
import re
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


@pytest.fixture(scope="module")
def exported(tiny_request, tmp_path_factory):
    """A real ONNX fp32 artifact of the tiny model with the manifest its export wrote."""
    from edgecomp.export import get_exporter
    from edgecomp.export.base import Precision

    artifact = get_exporter("onnx").export(
        tiny_request(Precision.FP32, tmp_path_factory.mktemp("exported")))
    return artifact.path, json.loads(artifact.manifest_path.read_text())


def strangers_copy(exported, folder, change) -> tuple:
    """The exported artifact in `folder` beside its manifest as `change(manifest)` left it."""
    path, written = exported
    folder.mkdir(exist_ok=True)
    copy = folder / path.name
    copy.write_bytes(path.read_bytes())
    data = json.loads(json.dumps(written))
    change(data)
    (folder / f"{path.name}.json").write_text(json.dumps(data))
    return copy, folder / f"{path.name}.json"


def setter(key, value):
    return lambda data: data.__setitem__(key, value)


STRANGERS = {
    "model-a-number": (setter("model", 123), "model: must be a string, got 123"),
    "no-model": (lambda data: data.pop("model"), "model: required, but missing"),
    "no-source": (lambda data: data.pop("source_sha256"), "source_sha256: required, but"),
    "technique-a-list": (setter("technique", ["a", "b"]), "technique: must be a string"),
    "lone-surrogate": (setter("model", "net\ud800"), "model: must be valid Unicode text"),
    "escape-and-newline": (setter("model", "net\x1b[31m\nINFO forged"),
                           re.escape("model: 'net\\x1b[31m\\nINFO forged' holds "
                                     "characters that are not printable")),
    "bidi-override": (setter("technique", "\u202enone"), "technique: .* not printable"),
    "too-long": (setter("model", "n" * 5000), "model: must be at most 200 characters long"),
    "empty": (setter("model", ""), "model: must not be empty"),
    "hash-not-hex": (setter("source_sha256", "not-a-hash"), "source_sha256: 'not-a-hash' is "
                     "not a sha256"),
    "calibration-hash-not-hex": (
        setter("calibration", {"source": "digits", "sha256": "x" * 64, "samples": 1,
                               "method": "minmax", "per_channel": True}),
        "calibration.sha256: .* is not a sha256"),
    "tensor-name-a-number": (lambda data: data["inputs"][0].__setitem__("name", 7),
                             r"inputs\[0\].name: must be a string"),
}


@pytest.mark.parametrize("case", STRANGERS)
def test_a_strangers_manifest_is_refused_naming_the_file_and_the_field(exported, tmp_path,
                                                                       case):
    change, problem = STRANGERS[case]
    artifact, manifest = strangers_copy(exported, tmp_path / "theirs", change)
    with pytest.raises(InputError) as info:
        artifact_from_file(artifact)
    message = str(info.value)
    assert message.startswith(f"{manifest} is not an edgecomp manifest: ")
    assert re.search(problem, message), message
    assert message.endswith("; delete it to measure the artifact without it.")


def test_bench_refuses_a_strangers_manifest_before_measuring_in_one_escaped_line(
        exported, tmp_path, monkeypatch, capsys):
    """Exit 1 with one line on stderr, which shows the name's escape sequence and line
    break escaped; nothing is measured or stored."""
    from edgecomp.cli import main
    from edgecomp.results.store import Store

    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "results.db"))
    artifact, _ = strangers_copy(exported, tmp_path / "theirs",
                                 setter("model", "net\x1b[2J\nINFO forged"))
    assert main(["bench", str(artifact), "--target", "local", "--runs", "5"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and len(err.strip().splitlines()) == 1
    assert "model: 'net\\x1b[2J\\nINFO forged' holds characters" in err
    with Store() as store:
        assert store.runs() == []


def test_a_foreign_artifact_named_with_a_line_break_keeps_its_name_and_gets_a_printable_model(
        exported, tmp_path):
    """Without a manifest, the file is its own model: its name stays exact (the record's
    artifact name, shown escaped), its model name is the stem with the line break escaped."""
    path, _ = exported
    foreign = tmp_path / "a\nINFO forged.onnx"
    foreign.write_bytes(path.read_bytes())
    artifact = artifact_from_file(foreign)
    assert artifact.manifest.file == "a\nINFO forged.onnx"
    assert artifact.manifest.model == "a\\nINFO forged"
