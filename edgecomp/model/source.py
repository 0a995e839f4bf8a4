"""Load models safely: a factory plus weights, a torch.export program, an ONNX file, or the demo.

Weights are read with `torch.load(weights_only=True)`: a pickle that would run code
on this machine is refused, with a sentence saying how to save plain weights instead.
A `.pt2` archive is checked the same way (`edgecomp.model.untrusted.checked_pt2`) before
torch.export.load sees it.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import pickle
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn

from edgecomp.atomic import atomic_path
from edgecomp.model.data import timing_data
from edgecomp.errors import InputError
from edgecomp.export import format_for_path
from edgecomp.export.base import first_line
from edgecomp.model.foreign import refuse_foreign
from edgecomp.hashing import file_sha256, state_dict_sha256
from edgecomp.model.signature import (InputSpec, ShapeChoice, UNKNOWN, bind, describe, fix_shapes,
                                forward_names, resolve, specs_from_data, specs_from_tensors)
from edgecomp.model.untrusted import checked_pt2, open_regular, read_regular, size_text
from edgecomp.vocab import Format

if TYPE_CHECKING:
    from edgecomp.model.data import Dataset

log = logging.getLogger(__name__)

DEMO_NAME = "demo-cnn"
DEMO_INPUT_SHAPE = (1, 1, 8, 8)

# A model's name reaches file names (<name>.int8.tflite) and tables: letters, digits and
# . _ - (starting with a letter or digit), like a file's stem.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_model_name(name: str) -> str:
    """The name as given (`--name`), or InputError naming what a model name may hold."""
    if not _MODEL_NAME.fullmatch(name):
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


def cache_dir() -> Path:
    """Where trained demo weights are kept: $EDGECOMP_CACHE or ~/.cache/edgecomp."""
    from edgecomp import paths

    return paths.cache_dir()


def parse_input_shapes(values: list[str] | str | None) -> ShapeChoice | None:
    """--input-shape values (repeatable): '1,3,224,224' for a one-input model, or
    NAME=DIMS ('input=1,16000') for each input whose open dimensions are chosen."""
    if not values:
        return None
    values = [values] if isinstance(values, str) else list(values)
    named = [v for v in values if "=" in v]
    if not named:
        if len(values) > 1:
            raise InputError("--input-shape without a name describes a model's only input; "
                             "name each input instead: --input-shape NAME=1,16000.")
        return parse_shape(values[0])
    if len(named) != len(values):
        raise InputError("--input-shape: name every input (NAME=DIMS) once one is named.")
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, _, dims = value.partition("=")
        name = name.strip()
        if not name:
            raise InputError(f"--input-shape {value!r}: write it as NAME=DIMS, e.g. input=1,16000.")
        if name in shapes:
            raise InputError(f"--input-shape names {name!r} twice; give each input once.")
        shapes[name] = parse_shape(dims, flag=f"--input-shape {name}=")
    return shapes


def parse_shape(text: str, *, flag: str = "--input-shape ") -> tuple[int, ...]:
    """'1,3,224,224' or '1x3x224x224' to a tuple of positive ints."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        given = f"{flag}{text}" if flag.endswith("=") else f"{flag}{text!r}"
        raise InputError(f"{given} is not a shape of positive sizes; write it like "
                         "1,3,224,224.")
    return shape


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
        return _load_exported(path, data=data, input_shape=input_shape)
    artifact_format = format_for_path(path)
    if artifact_format == Format.ONNX:
        return _load_onnx(path, data=data, input_shape=input_shape)
    if artifact_format is not None:
        raise InputError(f"{path} is an exported {artifact_format.value} artifact, not a model "
                         "to compress: measure it with `edgecomp bench`, or give the PyTorch "
                         "or ONNX model it came from.")
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt") and path.exists():
        raise InputError(f"{path} holds weights, not a model: give the code that builds the "
                         f"model as package.module:function and pass the file with --weights.")
    if ":" in spec:
        return _load_factory(spec, weights=weights, input_shape=input_shape, data=data)
    raise InputError(f"cannot tell what model {spec!r} is: give package.module:function "
                     "(plus --weights), a .pt2 torch.export file, an .onnx file, or nothing "
                     "for the built-in demo.")


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


def _load_factory(spec: str, *, weights: Path | None, input_shape: tuple[int, ...] | None,
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
    return ModelSource(name=factory_name(spec), kind="factory", module=model,
                       inputs=_factory_inputs(spec, model, input_shape, data), sha256=sha,
                       spec=spec)


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
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist.")
    refuse_foreign(path)  # torch.load would refuse TorchScript with a misleading message
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


def _load_exported(path: Path, *, data: Dataset | None,
                   input_shape: ShapeChoice | None) -> ModelSource:
    buffer = checked_pt2(path)  # nothing in it runs code when torch loads it
    try:
        program = torch.export.load(buffer)
    except Exception as exc:  # torch.export.load raises many types for a damaged archive
        raise InputError(f"{path} is not a readable torch.export program (truncated or "
                         f"corrupt?): {str(exc).splitlines()[0][:200] if str(exc) else exc!r}"
                         ) from exc
    user_inputs = set(program.graph_signature.user_inputs)
    placeholders = [n for n in program.graph.nodes
                    if n.op == "placeholder" and n.name in user_inputs]
    specs = []
    for node in placeholders:
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{path}: input {node.name!r} is not a tensor; edgecomp feeds "
                             "tensor inputs only.")
        shape = tuple(int(d) if isinstance(d, int) else UNKNOWN for d in value.shape)
        specs.append(InputSpec(node.name, shape, str(value.dtype).removeprefix("torch.")))
    specs = fix_shapes(specs, input_shape, model=path.name)
    # torchao (installed with litert-torch) lets the unlifted graph switch train/eval the
    # way nn.Module users expect; torch's own module raises on .eval().
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    module = program.module()
    allow_exported_model_train_eval(module)
    return ModelSource(name=path.stem, kind="exported", module=module,
                       inputs=resolve(specs, data, model=path.name), sha256=file_sha256(path),
                       spec=str(path))


ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
               9: "bool", 10: "float16", 11: "float64"}


# The most an ONNX model may hold with its external data: it is exported as one file,
# and protobuf refuses messages of 2 GiB or more.
MAX_ONNX_BYTES = 2**31 - 2**20


def _load_onnx(path: Path, *, data: Dataset | None,
               input_shape: ShapeChoice | None) -> ModelSource:
    import onnx

    from edgecomp.export.onnx import external_data_locations

    try:
        model = onnx.load_model_from_string(
            read_regular(path, what="model file", max_bytes=MAX_ONNX_BYTES))
        locations = external_data_locations(model)
        sizes = [_external_size(path, location) for location in locations]
        if path.stat().st_size + sum(sizes) > MAX_ONNX_BYTES:
            raise InputError(f"{path} with its external data is {size_text(sum(sizes))}, "
                             "more than one ONNX file can hold (2 GiB); edgecomp exports "
                             "models as one file.")
        # onnx refuses locations outside the model's folder, links and non-regular files.
        onnx.load_external_data_for_model(model, str(path.parent))
        onnx.checker.check_model(model)
    except InputError:
        raise
    except Exception as exc:  # protobuf DecodeError, ValidationError, OSError...
        raise InputError(f"{path} is not a valid ONNX model (truncated or corrupt?): "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else exc!r}") from exc
    specs = resolve(fix_shapes(onnx_inputs(model), input_shape, model=path.name), data,
                    model=path.name)
    # The artifact keeps the file's open dimensions: without data, time it on the chosen ones.
    timing = timing_data(specs) if input_shape is not None and data is None else None
    return ModelSource(name=path.stem, kind="onnx", module=None, inputs=specs,
                       sha256=_onnx_sha256(path, locations), spec=str(path), onnx_path=path,
                       timing=timing)


def _external_size(path: Path, location: str) -> int:
    """The size of an external data file, refused unless it is a regular file inside the
    model's folder (checked here too, so sizes are only ever read from inside it)."""
    relative = Path(location)
    if relative.is_absolute() or ".." in relative.parts or not location:
        raise InputError(f"{path} keeps weights in {location!r}, outside its own folder; "
                         "external data must sit beside the model.")
    with open_regular(path.parent / relative, what="external data file",
                      max_bytes=MAX_ONNX_BYTES) as handle:
        return os.fstat(handle.fileno()).st_size


def _onnx_sha256(path: Path, locations: list[str]) -> str:
    """The model's identity: the .onnx file, and its external data files when it has any."""
    if not locations:
        return file_sha256(path)
    parts = [file_sha256(path), *(f"{loc}:{file_sha256(path.parent / loc)}" for loc in locations)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def onnx_inputs(model) -> tuple[InputSpec, ...]:
    """The graph inputs of an ONNX model (initializers excluded); open dims are UNKNOWN."""
    initializers = {i.name for i in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type not in ONNX_DTYPES:
            raise InputError(f"ONNX input {value.name!r} has element type {tensor.elem_type}, "
                             "which edgecomp cannot feed.")
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else UNKNOWN
                      for d in tensor.shape.dim)
        specs.append(InputSpec(value.name, shape, ONNX_DTYPES[tensor.elem_type]))
    return tuple(specs)


def check_data(source: ModelSource, dataset: Dataset, *, what: str) -> Dataset:
    """The data bound to the model's inputs; refused, before anything is written, when
    its names, shapes or values do not fit, or when the model cannot run on it."""
    bound = bind(dataset, source.inputs, what=what)
    if source.module is not None:
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


def demo_model(*, progress: Any = None) -> ModelSource:
    """The built-in demo: a small CNN trained once on scikit-learn's digits, then cached."""
    from edgecomp.model.data import demo_digits
    from edgecomp.model.demo import DemoCNN

    model = DemoCNN()
    path = cache_dir() / "demo" / "demo-cnn-v1.pt"
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("cached demo weights at %s are unreadable (%s); retraining", path, exc)
            path.unlink()
    if not path.is_file():
        from edgecomp.model.train import train_classifier

        model = train_classifier(model, demo_digits("train"), epochs=8, lr=3e-3, seed=0,
                                 progress=progress)
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
    model.eval()
    return ModelSource(name=DEMO_NAME, kind="demo", module=model,
                       inputs=(InputSpec(forward_names(model, 1)[0], DEMO_INPUT_SHAPE),),
                       sha256=state_dict_sha256(model.state_dict()), spec="demo")
