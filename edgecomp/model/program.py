"""Models given as a torch.export program (`.pt2`), checked before torch loads them.

A `.pt2` archive is checked (`edgecomp.model.untrusted.checked_pt2`) so that nothing in it
runs code when torch.export.load reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from edgecomp.errors import InputError
from edgecomp.hashing import file_sha256
from edgecomp.model.signature import UNKNOWN, InputSpec, ShapeChoice, fix_shapes, resolve
from edgecomp.model.source import ModelSource
from edgecomp.model.untrusted import checked_pt2

if TYPE_CHECKING:
    from edgecomp.model.data import Dataset


def load_program(path: Path, *, data: Dataset | None,
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
