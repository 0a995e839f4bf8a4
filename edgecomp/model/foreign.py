"""Recognise model files edgecomp does not load (TorchScript, Keras, TensorFlow), by their
contents, and say in one sentence how to turn them into something it does load.

TorchScript is refused rather than loaded: `torch.jit.load` runs the TorchScript code in
the archive (`__setstate__` included) and reads its pickles, and a model file from a
stranger must never run code here. The user can turn their own TorchScript model into a
`.pt2` or `.onnx` file in their own process. Keras and TensorFlow models need TensorFlow,
which edgecomp does not install; their own converters make a `.tflite` or `.onnx` file.

Nothing here parses more than a zip directory or a file's first bytes: the file is named
by what it holds, whatever its extension.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from edgecomp.errors import InputError
from edgecomp.model.untrusted import open_regular

# HDF5's signature sits at offset 0, or 512, 1024, 2048... when the file has a user block.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)

TORCHSCRIPT_ADVICE = (
    "edgecomp does not load TorchScript, because torch.jit.load runs code stored in the "
    "file; in your own Python process, load it and save it as a torch.export program "
    "(torch.export.save(torch.export.export(model, example_inputs), 'model.pt2')) or as "
    "ONNX (torch.onnx.export(model, example_inputs, 'model.onnx')), or give the code that "
    "builds the model as package.module:function")
NO_TENSORFLOW = "edgecomp does not load Keras or TensorFlow models (they need TensorFlow)"


def refuse_foreign(path: Path) -> None:
    """Raise InputError when `path` is a TorchScript, Keras or TensorFlow model; return
    otherwise (also when it does not exist: the caller says so)."""
    kind = foreign_kind(path)
    if kind is None:
        return
    if kind == "torchscript":
        raise InputError(f"{path} is a TorchScript archive (torch.jit.save): "
                         f"{TORCHSCRIPT_ADVICE}.")
    if kind == "savedmodel":
        folder = path if path.is_dir() else path.parent
        raise InputError(f"{path} is a TensorFlow SavedModel: {NO_TENSORFLOW}; convert it "
                         f"with tf.lite.TFLiteConverter.from_saved_model('{folder}') and "
                         f"deploy the .tflite, or with `python -m tf2onnx.convert --saved-model "
                         f"{folder} --output model.onnx` and give the .onnx file.")
    what = "a Keras model (.keras archive)" if kind == "keras" else \
        "an HDF5 file, as Keras saves .h5 models"
    raise InputError(f"{path} is {what}: {NO_TENSORFLOW}; load it with "
                     "keras.models.load_model and convert it with "
                     "tf.lite.TFLiteConverter.from_keras_model(model) and deploy the .tflite, "
                     "or with tf2onnx.convert.from_keras(model, output_path='model.onnx') and "
                     "give the .onnx file.")


def foreign_kind(path: Path) -> str | None:
    """'torchscript', 'keras', 'hdf5' or 'savedmodel' when `path` holds one, else None."""
    if path.is_dir():
        return "savedmodel" if any((path / name).is_file() for name in
                                   ("saved_model.pb", "saved_model.pbtxt")) else None
    if path.name in ("saved_model.pb", "saved_model.pbtxt") and (path.parent / "variables").is_dir():
        return "savedmodel"
    if not path.is_file():
        return None  # missing, a FIFO or a device: the loader refuses it with its sentence
    with open_regular(path, what="model file", max_bytes=None) as handle:
        for offset in _HDF5_OFFSETS:
            handle.seek(offset)
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return "hdf5"
        handle.seek(0)
        if not zipfile.is_zipfile(handle):
            return None
        try:
            with zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
    # torch's own test (serialization._is_torchscript_zip) is a constants.pkl record;
    # TorchScript archives also keep their code under <name>/code/.
    records = {name.partition("/")[2] for name in names}
    if "constants.pkl" in records or any(r.startswith("code/") for r in records):
        return "torchscript"
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return "keras"
    return None
