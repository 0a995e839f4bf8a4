"""Models given as an ONNX file: read within limits, external data kept beside it, checked.

ONNX files can only become ONNX artifacts (nothing here turns them back into PyTorch);
their inputs come from the graph, open dimensions from data or --input-shape.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp.errors import InputError
from edgecomp.hashing import file_sha256
from edgecomp.model.data import timing_data
from edgecomp.model.signature import UNKNOWN, InputSpec, ShapeChoice, fix_shapes, resolve
from edgecomp.model.source import ModelSource
from edgecomp.model.untrusted import open_regular, read_regular, size_text

if TYPE_CHECKING:
    from edgecomp.model.data import Dataset


ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
               9: "bool", 10: "float16", 11: "float64"}


# The most an ONNX model may hold with its external data: it is exported as one file,
# and protobuf refuses messages of 2 GiB or more.
MAX_ONNX_BYTES = 2**31 - 2**20


def load_onnx(path: Path, *, data: Dataset | None,
               input_shape: ShapeChoice | None) -> ModelSource:
    import onnx

    try:
        model = _read_model(path)
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
        raise _not_onnx(path, exc) from exc
    specs = resolve(fix_shapes(onnx_inputs(model), input_shape, model=path.name), data,
                    model=path.name)
    # The artifact keeps the file's open dimensions: without data, time it on the chosen ones.
    timing = timing_data(specs) if input_shape is not None and data is None else None
    return ModelSource(name=path.stem, kind="onnx", module=None, inputs=specs,
                       sha256=_onnx_sha256(path, locations), spec=str(path), onnx_path=path,
                       timing=timing)


def external_data_files(path: Path) -> list[tuple[str, Path]]:
    """The files an ONNX model reads its weights from, beside it: (location as the model
    names it, the file here), each a regular file inside the model's folder; [] when the
    model is one file."""
    try:
        model = _read_model(path)
    except InputError:
        raise
    except Exception as exc:  # protobuf DecodeError
        raise _not_onnx(path, exc) from exc
    locations = external_data_locations(model)
    for location in locations:
        _external_size(path, location)
    return [(location, path.parent / location) for location in locations]


def _read_model(path: Path):
    """The model in `path` without its external data, read as a regular file of bounded
    size (a FIFO or a huge file is refused before protobuf sees it)."""
    import onnx

    return onnx.load_model_from_string(
        read_regular(path, what="model file", max_bytes=MAX_ONNX_BYTES))


def _not_onnx(path: Path, exc: BaseException) -> InputError:
    return InputError(f"{path} is not a valid ONNX model (truncated or corrupt?): "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else exc!r}")


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


def external_data_locations(model) -> list[str]:
    """The files, relative to the model's folder, that hold weights outside the .onnx
    (`onnx.save_model(..., save_as_external_data=True)`), each named once.

    Written here because onnx keeps its walk over every tensor (initializers, sparse
    initializers, node attributes, subgraphs) private.
    """
    import onnx

    locations: list[str] = []

    def visit(tensor) -> None:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = onnx.external_data_helper.ExternalDataInfo(tensor).location
            if location not in locations:
                locations.append(location)

    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for tensor in graph.initializer:
            visit(tensor)
        for sparse in graph.sparse_initializer:
            visit(sparse.values)
            visit(sparse.indices)
        for node in graph.node:
            for attribute in node.attribute:
                for tensor in (attribute.t, *attribute.tensors):
                    visit(tensor)
                graphs.extend([attribute.g, *attribute.graphs])
    return locations
