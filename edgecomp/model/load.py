"""Load the model the user named, whatever kind it is, refusing what must not be loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp.errors import InputError
from edgecomp.model.demo import demo_model
from edgecomp.model.factory import load_factory
from edgecomp.model.foreign import refuse_foreign
from edgecomp.model.onnx import load_onnx
from edgecomp.model.program import load_program
from edgecomp.model.signature import ShapeChoice
from edgecomp.model.source import ModelSource
from edgecomp.vocab import Format

if TYPE_CHECKING:
    from edgecomp.model.data import Dataset


def load_model(spec: str | None, *, weights: Path | None = None,
               input_shape: ShapeChoice | None = None,
               data: Dataset | None = None) -> ModelSource:
    """Load the model named by `spec`; `data` (calibration or evaluation) tells the inputs
    of a factory that declares none, and fills dimensions an ONNX model leaves open.
    `input_shape` (see `fix_shapes`) chooses them instead."""
    if spec in (None, "", "demo"):
        return demo_model()
    path = Path(spec)
    refuse_foreign(path)  # TorchScript, Keras, SavedModel: one sentence saying what to do
    if path.suffix == ".pt2":
        return load_program(path, data=data, input_shape=input_shape)
    artifact_format = Format.of_file(path)
    if artifact_format == Format.ONNX:
        return load_onnx(path, data=data, input_shape=input_shape)
    if artifact_format is not None:
        raise InputError(f"{path} is an exported {artifact_format.value} artifact, not a model "
                         "to compress: measure it with `edgecomp bench`, or give the PyTorch "
                         "or ONNX model it came from.")
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt") and path.exists():
        raise InputError(f"{path} holds weights, not a model: give the code that builds the "
                         f"model as package.module:function and pass the file with --weights.")
    if ":" in spec:
        return load_factory(spec, weights=weights, input_shape=input_shape, data=data)
    raise InputError(f"cannot tell what model {spec!r} is: give package.module:function "
                     "(plus --weights), a .pt2 torch.export file, an .onnx file, or nothing "
                     "for the built-in demo.")
