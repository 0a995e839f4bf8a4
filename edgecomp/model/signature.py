"""A model's inputs (names, shapes, dtypes) and how data samples are fed to them.

Every stage speaks of inputs through `InputSpec`: sources read them from the model, data
is bound to them by name, exporters trace and calibrate with them, the agent is fed in
their order, and the manifest records them. A model may take several inputs of any
dtype: float tensors, int64 token ids, bool masks, a scalar sample rate, recurrent state.

Data files hold one array per input, sample axis first. Where an input's first axis is a
batch axis of size 1, sample `i` is `array[i:i+1]` (so `x` of shape (N, 3, 224, 224)
feeds an input of shape (1, 3, 224, 224)); otherwise sample `i` is `array[i]` (a scalar
sample rate stored as (N,), recurrent state stored as (N, 2, 1, 128)).
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence, Union

import numpy as np

from edgecomp.config import key_value
from edgecomp.errors import InputError

if TYPE_CHECKING:
    import torch

    from edgecomp.model.data import Dataset

log = logging.getLogger(__name__)

UNKNOWN = -1  # a dimension the model leaves open (an ONNX dim_param), until data fixes it

# What --input-shape says: one shape for a one-input model, or shapes by input name.
ShapeChoice = Union[tuple[int, ...], Mapping[str, tuple[int, ...]]]


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape as fed (batch axis included) and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def batched(self) -> bool:
        """Whether the first axis is a batch axis of size 1 that samples are stacked on."""
        return len(self.shape) > 0 and self.shape[0] in (1, UNKNOWN)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample in a data file (without the leading batch axis)."""
        return self.shape[1:] if self.batched else self.shape

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"

    def concrete(self) -> "InputSpec":
        """Unknown dimensions set to 1."""
        return replace(self, shape=tuple(1 if d == UNKNOWN else d for d in self.shape))

    def zeros(self) -> "torch.Tensor":
        """An example input of zeros (for tracing and export), within the memory bound."""
        import torch

        from edgecomp.model.data import generated

        generated(self, what="an example input")
        return torch.from_numpy(np.zeros(self.concrete().shape, dtype=self.dtype))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def describe(specs: Sequence[InputSpec]) -> str:
    return ", ".join(f"{s.name} {s.dtype}{list(s.shape)}" for s in specs)


def forward_names(module: Any, count: int) -> tuple[str, ...]:
    """The names of a module's first `count` positional forward arguments."""
    try:
        parameters = [p for p in inspect.signature(module.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters[:count]]
    if len(names) < count or len(set(names)) < count:
        names = ["input"] if count == 1 else [f"input{k}" for k in range(count)]
    return tuple(names)


def specs_from_tensors(names: Sequence[str], tensors: Sequence[Any]) -> tuple[InputSpec, ...]:
    """Specs of example tensors (torch or numpy)."""
    specs = []
    for name, tensor in zip(names, tensors):
        array = tensor.numpy() if hasattr(tensor, "numpy") else np.asarray(tensor)
        specs.append(InputSpec(name, tuple(int(d) for d in array.shape), array.dtype.name))
    return tuple(specs)


def specs_from_data(names: Sequence[str], dataset: "Dataset") -> tuple[InputSpec, ...]:
    """Specs for a model that declares no inputs, from its data: one batched input per array.

    A single `x` array feeds the first (only) argument; several arrays are matched to
    the argument names.
    """
    arrays = dataset.arrays
    if len(arrays) == 1:
        (array,) = arrays.values()
        return (InputSpec(names[0], (1, *array.shape[1:]), array.dtype.name),)
    missing = [n for n in names if n not in arrays]
    if missing or len(names) != len(arrays):
        raise InputError(f"{dataset.source} holds inputs {', '.join(arrays)} but the model "
                         f"takes {', '.join(names)}; name one array after each argument.")
    return tuple(InputSpec(n, (1, *arrays[n].shape[1:]), arrays[n].dtype.name) for n in names)


def _matches(shape: Sequence[int], wanted: Sequence[int]) -> bool:
    return len(shape) == len(wanted) and all(w in (UNKNOWN, d) for d, w in zip(shape, wanted))


def fix_shapes(specs: Sequence[InputSpec], shapes: ShapeChoice | None, *, model: str
               ) -> tuple[InputSpec, ...]:
    """The inputs with the shapes --input-shape gives: a bare shape for a one-input model,
    or shapes by input name. Only open (UNKNOWN) dimensions may change; a shape of the
    wrong rank, a name the model lacks or a fixed dimension given another size is refused."""
    if shapes is None:
        return tuple(specs)
    if not isinstance(shapes, Mapping):
        if len(specs) != 1:
            raise InputError(f"{model} takes {len(specs)} inputs ({describe(specs)}); give "
                             "each one you fix by name, e.g. --input-shape "
                             f"{specs[0].name}={','.join(str(max(d, 1)) for d in specs[0].shape)}.")
        shapes = {specs[0].name: tuple(shapes)}
    by_name = {spec.name: spec for spec in specs}
    for name, shape in shapes.items():
        spec = by_name.get(name)
        given = f"--input-shape {name}={','.join(str(d) for d in shape)}"
        if spec is None:
            raise InputError(f"{given}: {model} has no input named {name!r}; its inputs are "
                             f"{describe(specs)}.")
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise InputError(f"{given}: every dimension must be a positive whole number.")
        if len(shape) != len(spec.shape):
            raise InputError(f"{given} has {len(shape)} dimensions, but {model}'s input "
                             f"{name!r} has {len(spec.shape)}: {list(spec.shape)} (-1: open).")
        for axis, (wanted, have) in enumerate(zip(shape, spec.shape)):
            if have not in (UNKNOWN, wanted):
                raise InputError(f"{given}: dimension {axis} of {model}'s input {name!r} is "
                                 f"fixed at {have} in the model; only its open (-1) "
                                 f"dimensions can be chosen: {list(spec.shape)}.")
    return tuple(replace(spec, shape=tuple(shapes[spec.name])) if spec.name in shapes
                 else spec for spec in specs)


def resolve(specs: Sequence[InputSpec], dataset: "Dataset | None", *,
            model: str | None = None) -> tuple[InputSpec, ...]:
    """Fill unknown dimensions from the data (a stored sample one axis short is batched);
    without data they become 1, and one warning line says so (naming `model`)."""
    arrays = _matched(specs, dataset) if dataset is not None else {}
    resolved, guessed = [], []
    for spec in specs:
        array = arrays.get(spec.name)
        if UNKNOWN not in spec.shape or array is None:
            resolved.append(spec.concrete())
            if UNKNOWN in spec.shape:
                guessed.append(f"{spec.name} {list(spec.shape)} -> {list(spec.concrete().shape)}")
            continue
        sample = tuple(int(d) for d in array.shape[1:])
        if len(sample) == len(spec.shape) - 1 and _matches(sample, spec.shape[1:]):
            resolved.append(replace(spec, shape=(1, *sample)))
        elif _matches(sample, spec.shape):
            resolved.append(replace(spec, shape=sample))
        else:
            raise InputError(f"{dataset.source}: samples of {spec.name!r} have shape "
                             f"{list(sample)}, which does not fit the model's "
                             f"{list(spec.shape)} (-1: any size).")
    if guessed:
        log.warning("%sopen dimensions set to 1: %s; choose them with --input-shape NAME=DIMS "
                    "or give data", f"{model}: " if model else "", "; ".join(guessed))
    return tuple(resolved)


def _matched(specs: Sequence[InputSpec], dataset: "Dataset") -> dict[str, np.ndarray]:
    """The data's arrays under the model's input names; one sentence when they do not match."""
    arrays = dataset.arrays
    names = [s.name for s in specs]
    if len(arrays) == 1 and len(specs) == 1:
        return {names[0]: next(iter(arrays.values()))}
    if set(arrays) == set(names):
        return {n: arrays[n] for n in names}
    if "x" in arrays:
        raise InputError(f"{dataset.source} holds one input ('x') but the model takes "
                         f"{len(specs)}: {describe(specs)}; save one array per input name.")
    raise InputError(f"{dataset.source} holds inputs {', '.join(arrays)} but the model takes "
                     f"{describe(specs)}; name one array after each model input.")


def bind(dataset: "Dataset", specs: Sequence[InputSpec], *, what: str) -> "Dataset":
    """The data under the model's input names and order, shaped and typed as it takes them.

    Each array becomes (N, *sample_shape) of the input's dtype. Refuses, with a sentence,
    data whose names, shapes or values cannot feed the model.
    """
    from edgecomp.model.data import Dataset

    bound = {}
    for spec in specs:
        array = _matched(specs, dataset)[spec.name]
        sample = tuple(int(d) for d in array.shape[1:])
        wanted = spec.sample_shape
        if sample != wanted:
            if spec.batched and sample == spec.shape:
                array = array[:, 0]
            elif math.prod(sample) == math.prod(wanted):
                array = array.reshape((len(array), *wanted))
            else:
                raise InputError(f"the {what} data has samples of shape {list(sample)} for "
                                 f"{spec.name!r}, but the model takes {list(spec.shape)}"
                                 f"{' (batch first)' if spec.batched else ''}; reshape the "
                                 "data or pass --input-shape.")
        bound[spec.name] = _cast(array, spec, what=what)
    if list(bound) == list(dataset.arrays) and all(
            bound[k] is dataset.arrays[k] for k in bound):
        return dataset
    # The identity stays the data's own: binding renames and reshapes, it changes no value.
    return Dataset(arrays=bound, y=dataset.y, source=dataset.source, sha256=dataset.sha256)


def _cast(array: np.ndarray, spec: InputSpec, *, what: str) -> np.ndarray:
    dtype = np.dtype(spec.dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind in "iub" and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(f"the {what} data holds fractional values for {spec.name!r}, "
                             f"which takes {spec.dtype} (token ids, masks or counts); store "
                             "integers.")
    if dtype.kind in "iu" and array.dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise InputError(f"the {what} data for {spec.name!r} does not fit {spec.dtype}.")
    return np.ascontiguousarray(array.astype(dtype))


def sample(dataset: "Dataset", specs: Sequence[InputSpec], index: int) -> tuple[np.ndarray, ...]:
    """Sample `index` of bound data, each array in the shape its input takes."""
    return tuple(dataset.arrays[s.name][index:index + 1] if s.batched
                 else np.asarray(dataset.arrays[s.name][index]) for s in specs)


def batches(dataset: "Dataset", specs: Sequence[InputSpec], size: int
            ) -> Iterator[tuple[np.ndarray, ...]]:
    """Bound data in batches where every input is batched; one sample at a time otherwise."""
    step = size if all(s.batched for s in specs) else 1
    for start in range(0, len(dataset), step):
        if step == 1:
            yield sample(dataset, specs, start)
        else:
            yield tuple(dataset.arrays[s.name][start:start + step] for s in specs)


def stacked(dataset: "Dataset", specs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    """Every sample in the shape its input takes, stacked on a new first axis: what the
    agent's `run` command reads (`in0`, `in1`, ... in input order)."""
    return {f"in{k}": (dataset.arrays[s.name][:, None] if s.batched
                       else dataset.arrays[s.name]) for k, s in enumerate(specs)}


def flat_outputs(value: Any) -> list[Any]:
    """A model's outputs as a flat list: one tensor, a tuple/list, or a dict of them."""
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flat_outputs(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flat_outputs(v)]
    return [value] if value is not None else []


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
        name, dims = key_value(value, flag="--input-shape",
                               example="NAME=DIMS, e.g. input=1,16000")
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
