"""TorchScript, Keras and TensorFlow models are recognised by what they hold, whatever
their name, and refused with one sentence naming the converter to use; nothing in them
runs."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from edgecomp.cli import main
from edgecomp.model.foreign import foreign_kind
from tests import user_cli
from tests.user_cli import error_line

HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(504)


def cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return user_cli.cli(cwd, *argv, timeout=300)


def assert_one_sentence(result: subprocess.CompletedProcess, *needles: str) -> None:
    line = error_line(result)
    for needle in needles:
        assert needle in line, line


def torchscript(path: Path) -> Path:
    module = torch.jit.trace(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), torch.zeros(1, 4))
    torch.jit.save(module, str(path))
    return path


def keras_archive(path: Path) -> Path:
    """What keras.Model.save('x.keras') writes: a zip of config, metadata and weights."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.6.0"}')
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {}}')
        archive.writestr("model.weights.h5", HDF5)
    return path


def saved_model(folder: Path) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00")
    (folder / "fingerprint.pb").write_bytes(b"")
    return folder


TORCHSCRIPT = ("is a TorchScript archive", "torch.jit.load runs code",
               "torch.export.save", "torch.onnx.export", "package.module:function")


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.jit", "model.zip"])
def test_torchscript_is_refused_whatever_its_name(tmp_path, name):
    torchscript(tmp_path / name)
    assert_one_sentence(cli(tmp_path, "export", name, "-o", "out"), *TORCHSCRIPT)
    assert not (tmp_path / "out").exists()


def test_torchscript_weights_and_bench_are_refused_too(tmp_path):
    torchscript(tmp_path / "model.pt")
    (tmp_path / "mymodel.py").write_text("from torch import nn\n\ndef make():\n"
                                         "    return nn.Sequential(nn.Linear(4, 2), nn.ReLU())\n")
    assert_one_sentence(cli(tmp_path, "export", "mymodel:make", "--weights", "model.pt",
                            "--input-shape", "1,4", "-o", "out"), *TORCHSCRIPT)
    assert_one_sentence(cli(tmp_path, "bench", "model.pt", "--no-record"), *TORCHSCRIPT)


def test_silero_vads_own_torchscript_model_is_refused(tmp_path):
    silero_vad = pytest.importorskip("silero_vad")
    jit = Path(silero_vad.__file__).parent / "data" / "silero_vad.jit"
    assert_one_sentence(cli(tmp_path, "deploy", str(jit), "--no-record"), *TORCHSCRIPT)


def test_torchscript_code_never_runs(tmp_path, monkeypatch, capsys):
    """Refused before torch could load it: neither torch.jit.load nor torch.load is called."""
    path = torchscript(tmp_path / "model.pt")

    def forbidden(*args, **kwargs):
        raise AssertionError("a TorchScript archive was loaded")

    monkeypatch.setattr(torch.jit, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    assert main(["export", str(path), "-o", str(tmp_path / "out")]) == 1
    assert "TorchScript archive" in capsys.readouterr().err


KERAS = ("edgecomp does not load Keras or TensorFlow models",
         "tf.lite.TFLiteConverter.from_keras_model", "tf2onnx")


@pytest.mark.parametrize("name", ["model.keras", "model.zip"])
def test_keras_archive_is_refused_with_its_converter(tmp_path, name):
    keras_archive(tmp_path / name)
    assert_one_sentence(cli(tmp_path, "deploy", name, "--no-record"),
                        "a Keras model (.keras archive)", *KERAS)


@pytest.mark.parametrize("name", ["model.h5", "weights.hdf5"])
def test_hdf5_keras_file_is_refused_with_its_converter(tmp_path, name):
    (tmp_path / name).write_bytes(HDF5 + b"keras_version")
    assert_one_sentence(cli(tmp_path, "export", name, "-o", "out"), "HDF5", *KERAS)


def test_saved_model_folder_is_refused_with_its_converter(tmp_path):
    folder = saved_model(tmp_path / "exported")
    for given in (folder, folder / "saved_model.pb"):
        assert_one_sentence(cli(tmp_path, "deploy", str(given), "--no-record"),
                            "is a TensorFlow SavedModel",
                            f"tf.lite.TFLiteConverter.from_saved_model('{folder}')",
                            f"tf2onnx.convert --saved-model {folder}")
    assert_one_sentence(cli(tmp_path, "bench", str(folder), "--no-record"),
                        "is a TensorFlow SavedModel")


def test_names_alone_decide_nothing(tmp_path):
    """A `.keras` that is no zip, a zip without Keras records, a plain state dict and a
    torch.export program are not taken for foreign models."""
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "weights.pt")
    torch.export.save(torch.export.export(nn.Linear(4, 2), (torch.zeros(1, 4),)),
                      tmp_path / "program.pt2")
    (tmp_path / "empty").mkdir()
    for name in ("fake.keras", "other.keras", "weights.pt", "program.pt2", "empty", "missing"):
        assert foreign_kind(tmp_path / name) is None, name
    assert foreign_kind(torchscript(tmp_path / "script.bin")) == "torchscript"
