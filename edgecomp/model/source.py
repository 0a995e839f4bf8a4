"""A model ready to compress and export (`ModelSource`), its name, and data checked against it.

`edgecomp.model.load.load_model` makes one from what the user named: a factory plus weights
(`model.factory`), a torch.export program (`model.program`), an ONNX file (`model.onnx`) or
the built-in demo (`model.demo`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecomp.errors import InputError
from edgecomp.model.signature import InputSpec, bind, describe

if TYPE_CHECKING:  # torch stays out of `edgecomp --help` (the ONNX loader imports this)
    import torch
    from torch import nn

    from edgecomp.model.data import Dataset

# A model's name reaches file names (<name>.int8.tflite) and tables: letters, digits and
# . _ - (starting with a letter or digit), like a file's stem.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_model_name(name: str) -> str:
    """The name as given (`--name`), or InputError naming what a model name may hold."""
    if not MODEL_NAME_PATTERN.fullmatch(name):
        raise InputError(f"--name {name!r} is not a usable model name: use 1 to 100 letters, "
                         "digits and . _ - (starting with a letter or digit).")
    return name


def factory_name(spec: str) -> str:
    """The default name of a factory model `package.module:function`: the module's last
    part and the function (`models:make` -> "models.make"), so that two files' factories
    of one name differ; underscores become dashes."""
    module_name, _, function_name = spec.partition(":")
    return f"{module_name.rpartition('.')[2]}.{function_name}".replace("_", "-")


@dataclass(frozen=True)
class ModelSource:
    """A model ready to compress and export, with the facts every artifact records."""

    name: str
    kind: str  # "factory", "exported", "onnx", "demo" or "artifact"
    module: nn.Module | None  # None for ONNX files: they can only be exported to ONNX
    inputs: tuple[InputSpec, ...]
    sha256: str
    spec: str
    onnx_path: Path | None = None
    # The sample timed when no data is given, made where --input-shape chose the shapes
    # (else the agent makes one, with open dimensions of 1).
    timing: Dataset | None = None
    # The sha256 of the model as the user gave it, where this one was derived from it (a
    # recipe's compressed model); None: this is the model given. Results identify a model
    # by its name and this content.
    given_sha256: str | None = None

    @property
    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return tuple(spec.zeros() for spec in self.inputs)

    @property
    def example_input(self) -> torch.Tensor:
        """The only input's example; compression passes work on one-input models."""
        if len(self.inputs) != 1:
            raise InputError(f"{self.name} takes {len(self.inputs)} inputs "
                             f"({describe(self.inputs)}); compression passes work on models "
                             "with one input. Deploy or export it without a recipe.")
        return self.inputs[0].zeros()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.inputs[0].shape


def check_data(source: ModelSource, dataset: Dataset, *, what: str) -> Dataset:
    """The data bound to the model's inputs; refused, before anything is written, when
    its names, shapes or values do not fit, or when the model cannot run on it."""
    bound = bind(dataset, source.inputs, what=what)
    if source.module is not None:
        import torch

        from edgecomp.model.signature import sample

        try:
            with torch.no_grad():
                source.module(*(torch.from_numpy(np.array(a))
                                for a in sample(bound, source.inputs, 0)))
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"{source.name} cannot run on the {what} data "
                             f"({describe(source.inputs)}): "
                             f"{str(exc).splitlines()[0][:200]}") from exc
    return bound
