"""Load models safely: a factory plus weights, a torch.export program, an ONNX file, or the demo.

Weights are read with `torch.load(weights_only=True)`: a pickle that would run code
on this machine is refused, with a sentence saying how to save plain weights instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecomp.atomic import atomic_path
from edgecomp.errors import InputError
from edgecomp.export import format_for_path
from edgecomp.hashing import file_sha256, state_dict_sha256
from edgecomp.vocab import Format

log = logging.getLogger(__name__)

DEMO_NAME = "demo-cnn"
DEMO_INPUT_SHAPE = (1, 1, 8, 8)


@dataclass
class ModelSource:
    """A model ready to compress and export, with the facts every artifact records."""

    name: str
    kind: str  # "factory", "exported", "onnx" or "demo"
    module: nn.Module | None  # None for ONNX files: they can only be exported to ONNX
    example_input: torch.Tensor
    sha256: str
    spec: str
    onnx_path: Path | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.example_input.shape)


def cache_dir() -> Path:
    """Where trained demo weights are kept: $EDGECOMP_CACHE or ~/.cache/edgecomp."""
    from edgecomp import paths

    return paths.cache_dir()


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' or '1x3x224x224' to a tuple of positive ints."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"--input-shape {text!r} is not a shape; write it like 1,3,224,224.")
    return shape


def load_model(spec: str | None, *, weights: Path | None = None,
               input_shape: tuple[int, ...] | None = None,
               sample_shape: tuple[int, ...] | None = None) -> ModelSource:
    """Load the model named by `spec`; `sample_shape` (from data) helps find the input shape."""
    if spec in (None, "", "demo"):
        return demo_model()
    path = Path(spec)
    if path.suffix == ".pt2":
        return _load_exported(path)
    artifact_format = format_for_path(path)
    if artifact_format == Format.ONNX:
        return _load_onnx(path)
    if artifact_format is not None:
        raise InputError(f"{path} is an exported {artifact_format.value} artifact, not a model "
                         "to compress: measure it with `edgecomp bench`, or give the PyTorch "
                         "or ONNX model it came from.")
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt") and path.exists():
        raise InputError(f"{path} holds weights, not a model: give the code that builds the "
                         f"model as package.module:function and pass the file with --weights.")
    if ":" in spec:
        return _load_factory(spec, weights=weights, input_shape=input_shape,
                             sample_shape=sample_shape)
    raise InputError(f"cannot tell what model {spec!r} is: give package.module:function "
                     "(plus --weights), a .pt2 torch.export file, an .onnx file, or nothing "
                     "for the built-in demo.")


def _example(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.float32)


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
    if not callable(found):
        raise InputError(f"{what} {spec} is not callable.")
    return found


def _load_factory(spec: str, *, weights: Path | None, input_shape: tuple[int, ...] | None,
                  sample_shape: tuple[int, ...] | None) -> ModelSource:
    function_name = spec.partition(":")[2]
    model = import_callable(spec, what="model factory")()
    if not isinstance(model, nn.Module):
        raise InputError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module.")
    if weights is not None:
        model.load_state_dict(load_state_dict(weights, model))
    model.eval()
    shape = input_shape or getattr(model, "input_shape", None) or (
        (1, *sample_shape) if sample_shape else None)
    if shape is None:
        raise InputError(f"the input shape of {spec} is unknown: pass --input-shape (e.g. "
                         "1,3,224,224) or calibration/evaluation data.")
    sha = state_dict_sha256(model.state_dict())
    return ModelSource(name=function_name.replace("_", "-"), kind="factory", module=model,
                       example_input=_example(tuple(shape)), sha256=sha, spec=spec)


def load_state_dict(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Read a state dict with weights_only=True, refusing pickles that would run code."""
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
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


def _load_exported(path: Path) -> ModelSource:
    if not path.is_file():
        raise InputError(f"model file {path} does not exist.")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # torch.export.load raises many types for a damaged archive
        raise InputError(f"{path} is not a readable torch.export program (truncated or "
                         f"corrupt?): {str(exc).splitlines()[0][:200] if str(exc) else exc!r}"
                         ) from exc
    args = program.example_inputs[0] if program.example_inputs else ()
    if len(args) != 1 or not isinstance(args[0], torch.Tensor):
        placeholders = [n for n in program.graph.nodes if n.op == "placeholder"
                        and n.name in program.graph_signature.user_inputs]
        if len(placeholders) != 1:
            raise InputError(f"{path} takes {len(placeholders)} inputs; edgecomp supports "
                             "models with one tensor input.")
        example = _example(tuple(int(d) for d in placeholders[0].meta["val"].shape))
    else:
        example = _example(tuple(args[0].shape))
    # torchao (installed with litert-torch) lets the unlifted graph switch train/eval the
    # way nn.Module users expect; torch's own module raises on .eval().
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    module = program.module()
    allow_exported_model_train_eval(module)
    return ModelSource(name=path.stem, kind="exported", module=module,
                       example_input=example, sha256=file_sha256(path), spec=str(path))


def _load_onnx(path: Path) -> ModelSource:
    import onnx

    if not path.is_file():
        raise InputError(f"model file {path} does not exist.")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, OSError...
        raise InputError(f"{path} is not a valid ONNX model (truncated or corrupt?): "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else exc!r}") from exc
    initializers = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise InputError(f"{path} has {len(inputs)} inputs; edgecomp supports one tensor input.")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
            for d in inputs[0].type.tensor_type.shape.dim]
    return ModelSource(name=path.stem, kind="onnx", module=None, example_input=_example(
        tuple(dims)), sha256=file_sha256(path), spec=str(path), onnx_path=path)


def check_data_shape(source: ModelSource, sample_shape: tuple[int, ...], *, what: str) -> None:
    """Refuse data whose samples do not fit the model, before anything is written."""
    if tuple(source.input_shape[1:]) != tuple(sample_shape):
        raise InputError(f"the {what} data has samples of shape {tuple(sample_shape)} but "
                         f"{source.name} takes inputs of shape {source.input_shape[1:]} "
                         "(batch first); reshape the data or pass --input-shape.")
    if source.module is not None:
        try:
            with torch.no_grad():
                source.module(torch.zeros((1, *sample_shape)))
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"{source.name} cannot run on {what} samples of shape "
                             f"{tuple(sample_shape)}: {str(exc).splitlines()[0][:200]}") from exc


def demo_model(*, progress: Any = None) -> ModelSource:
    """The built-in demo: a small CNN trained once on scikit-learn's digits, then cached."""
    from edgecomp.data import demo_digits
    from edgecomp.models import DemoCNN

    model = DemoCNN()
    path = cache_dir() / "demo" / "demo-cnn-v1.pt"
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("cached demo weights at %s are unreadable (%s); retraining", path, exc)
            path.unlink()
    if not path.is_file():
        from edgecomp.compress.train import train_classifier

        model = train_classifier(model, demo_digits("train"), epochs=8, lr=3e-3, seed=0,
                                 progress=progress)
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
    model.eval()
    return ModelSource(name=DEMO_NAME, kind="demo", module=model,
                       example_input=_example(DEMO_INPUT_SHAPE),
                       sha256=state_dict_sha256(model.state_dict()), spec="demo")
