"""The float model's outputs on bound data, computed on this machine: the reference every
artifact's outputs in its board's runtime are compared with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from edgecomp.model.data import Dataset
    from edgecomp.model.signature import InputSpec


def model_outputs(module, dataset: Dataset, specs: Sequence[InputSpec], *,
                  batch: int = 64) -> list[np.ndarray]:
    """A torch module's outputs on bound data: one array per output, samples stacked."""
    import torch

    from edgecomp.model.signature import batches, flat_outputs

    module.eval()
    per_output: list[list[np.ndarray]] = []
    batched = all(s.batched for s in specs)
    with torch.no_grad():
        for arrays in batches(dataset, specs, batch):
            values = flat_outputs(module(*(torch.from_numpy(np.array(a))
                                           for a in arrays)))
            if not per_output:
                per_output = [[] for _ in values]
            for store, value in zip(per_output, values):
                value = value.detach().float().numpy()
                store.append(value if batched else value[None])
    return [np.concatenate(store) for store in per_output]


def onnx_outputs(path, dataset: Dataset, specs: Sequence[InputSpec]) -> list[np.ndarray]:
    """An ONNX model's outputs on bound data, run by onnxruntime here (one thread)."""
    import onnxruntime as ort

    from edgecomp.model.signature import sample

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    fed = {i.name for i in session.get_inputs()}
    per_output: list[list[np.ndarray]] = [[] for _ in session.get_outputs()]
    for index in range(len(dataset)):
        feed = {s.name: a for s, a in zip(specs, sample(dataset, specs, index)) if s.name in fed}
        for store, value in zip(per_output, session.run(None, feed)):
            store.append(np.asarray(value, dtype=np.float32)[None])
    return [np.concatenate(store) for store in per_output]
