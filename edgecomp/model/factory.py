"""Models given as code: `package.module:function` from the user's project, plus weights.

Weights are read with `torch.load(weights_only=True)`: a pickle that would run code on this
machine is refused, with a sentence saying how to save plain weights instead. A factory's
inputs come from --input-shape, the model's own `example_inputs` or `input_shape`, else
from the data it is given.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from edgecomp.errors import InputError, first_line
from edgecomp.hashing import state_dict_sha256
from edgecomp.model.foreign import refuse_foreign
from edgecomp.model.signature import (UNKNOWN, InputSpec, ShapeChoice, fix_shapes,
                                      forward_names, resolve, specs_from_data,
                                      specs_from_tensors)
from edgecomp.model.source import MODEL_NAME_PATTERN, ModelSource, factory_name
from edgecomp.model.untrusted import open_regular

if TYPE_CHECKING:
    from edgecomp.model.data import Dataset


def import_callable(spec: str, *, what: str = "function") -> Any:
    """`package.module:function` from the user's project (the current directory) or site."""
    module_name, sep, function_name = spec.partition(":")
    if not sep or not module_name or not function_name:
        raise InputError(f"{what} {spec!r}: write it as package.module:function.")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # user code usually lives in the user's project
    try:
        found = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot import {what} {spec}: {exc}. Check that the package is "
                         "importable from the current directory or installed.") from exc
    except Exception as exc:  # the user's module failed while it was imported
        raise InputError(f"importing {what} {spec} failed: {type(exc).__name__}: "
                         f"{first_line(exc)}. Fix the module, or run it alone with python "
                         "to see where.") from exc
    if not callable(found):
        raise InputError(f"{what} {spec} is not callable.")
    return found


def load_factory(spec: str, *, weights: Path | None, input_shape: tuple[int, ...] | None,
                  data: Dataset | None) -> ModelSource:
    factory = import_callable(spec, what="model factory")
    try:
        model = factory()
    except Exception as exc:  # the user's code: whatever it raises is theirs to fix
        raise InputError(f"model factory {spec} raised {type(exc).__name__}: "
                         f"{first_line(exc)}; a factory takes no arguments and returns "
                         "the model (a torch.nn.Module).") from exc
    if not isinstance(model, nn.Module):
        raise InputError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module; "
                         "a factory returns the PyTorch model itself.")
    if weights is not None:
        model.load_state_dict(load_state_dict(weights, model))
    model.eval()
    sha = state_dict_sha256(model.state_dict())
    return ModelSource(name=_factory_model_name(spec, model), kind="factory", module=model,
                       inputs=_factory_inputs(spec, model, input_shape, data), sha256=sha,
                       spec=spec)


def _factory_model_name(spec: str, model: nn.Module) -> str:
    """The model's own `model_name` attribute where its factory set one (as a model zoo
    names its models), else the name made from the factory's spec."""
    name = getattr(model, "model_name", None)
    if name is None:
        return factory_name(spec)
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise InputError(f"{spec} returned a model whose model_name {name!r} is not a usable "
                         "model name: use 1 to 100 letters, digits and . _ - (starting with a "
                         "letter or digit), or leave the attribute out.")
    return name


def _factory_inputs(spec: str, model: nn.Module, input_shape: ShapeChoice | None,
                    data: Dataset | None) -> tuple[InputSpec, ...]:
    """A factory model's inputs: --input-shape, the model's own `example_inputs` or
    `input_shape` attribute, else one input per data array (named after forward's
    arguments)."""
    examples = getattr(model, "example_inputs", None)
    if examples is not None and (not isinstance(examples, (tuple, list)) or not examples or
                                 not all(isinstance(t, torch.Tensor) for t in examples)):
        raise InputError(f"{spec}: the model's example_inputs must be a tuple of tensors.")
    if examples is not None:
        declared = specs_from_tensors(forward_names(model, len(examples)), examples)
        if input_shape is None:
            return declared
        # Example tensors are examples, not limits: any size of theirs may be chosen.
        open_specs = tuple(InputSpec(s.name, (UNKNOWN,) * len(s.shape), s.dtype)
                           for s in declared)
        return fix_shapes(open_specs, input_shape, model=spec)
    if isinstance(input_shape, Mapping):
        names = forward_names(model, len(input_shape))
        if set(names) != set(input_shape):
            raise InputError(f"{spec}: --input-shape names {', '.join(input_shape)}, but the "
                             f"model's forward takes {', '.join(names)}; name its arguments, "
                             "or set example_inputs on the model.")
        return tuple(InputSpec(name, input_shape[name]) for name in names)
    if input_shape is not None:
        return (InputSpec(forward_names(model, 1)[0], tuple(input_shape)),)
    shape = _declared_shape(spec, model)
    if shape is not None:
        return resolve((InputSpec(forward_names(model, 1)[0], shape),), data, model=spec)
    if data is None:
        raise InputError(f"the inputs of {spec} are unknown: pass --input-shape (e.g. "
                         "1,3,224,224, or NAME=DIMS for each input) or calibration/evaluation "
                         "data, or set example_inputs on the model (a tuple of example "
                         "tensors).")
    return specs_from_data(forward_names(model, len(data.arrays)), data)


def _declared_shape(spec: str, model: nn.Module) -> tuple[int, ...] | None:
    """The model's `input_shape` attribute, None (or -1) sizes open; Keras models have one
    that raises until the model is built, which counts as none."""
    try:
        shape = getattr(model, "input_shape", None)
    except Exception:  # a property of the user's model (Keras: "never been called")
        return None
    if shape is None:
        return None
    if isinstance(shape, (list, tuple)) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape):
        if all(d is None or d > 0 or d == UNKNOWN for d in shape):
            return tuple(UNKNOWN if d is None else int(d) for d in shape)
    raise InputError(f"{spec}: the model's input_shape attribute is {shape!r}, not one shape "
                     "of sizes; pass --input-shape (NAME=DIMS for each input), or set "
                     "example_inputs on the model (a tuple of example tensors).")


def load_state_dict(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Read a state dict with weights_only=True, refusing pickles that would run code."""
    refuse_foreign(path)  # torch.load would refuse TorchScript with a misleading message
    try:
        # A missing file, a folder or a FIFO is refused, each in its own words.
        with open_regular(path, what="weights file", max_bytes=None) as handle:
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(f"{path} was refused: loading it would run code stored in the pickle "
                         "(weights_only=True blocks that). If you trust the file, re-save only "
                         "the weights with torch.save(model.state_dict(), path).") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable PyTorch weights file (truncated or "
                         f"corrupt?): {str(exc).splitlines()[0][:200]}") from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} does not hold a state dict of tensors; save it with "
                         "torch.save(model.state_dict(), path).")
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise InputError(f"{path} does not match the model: {len(missing)} missing keys "
                         f"(e.g. {sorted(missing)[:2]}), {len(unexpected)} unexpected "
                         f"(e.g. {sorted(unexpected)[:2]}).")
    return state
