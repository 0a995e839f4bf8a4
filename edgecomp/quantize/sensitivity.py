"""Which layers of an int8 ONNX graph add the most error: the ones mixed precision keeps in
float.

A proxy picks candidates (the SQNR drop across each quantized node, measured with
onnxruntime's qdq_loss_debug tools); each candidate is then measured: quantized with only it
kept float, its output error compared with the fully quantized graph's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp.quantize.calibration import CalibrationReader, fed_samples, qdq

if TYPE_CHECKING:
    import numpy as np

    from edgecomp.export.base import ExportRequest


# Ops that only move or reshape data: quantizing them costs nothing by itself, but one
# feeding a float layer would still quantize that layer's input.
DATA_MOVEMENT_OPS = {"Pad", "Reshape", "Transpose", "Slice", "Squeeze", "Unsqueeze",
                     "Flatten", "Identity", "Cast", "Split", "Expand", "Gather", "Concat"}


def with_feeding_chain(path: Path, names: list[str]) -> list[str]:
    """The nodes to keep float plus the data-movement nodes that feed them: otherwise the
    quantizer would still round a float layer's input (e.g. raw audio through a Pad)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    chosen = list(names)
    queue = [node for node in graph.node if node.name in set(names)]
    while queue:
        node = queue.pop()
        for name in node.input:
            feeder = producer.get(name)
            if feeder is not None and feeder.op_type in DATA_MOVEMENT_OPS and \
                    feeder.name not in chosen:
                chosen.append(feeder.name)
                queue.append(feeder)
    return chosen


SENSITIVITY_SAMPLES = 16


QUANTIZED_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose", "Add", "Mul", "AveragePool",
                 "GlobalAveragePool", "Concat", "Softmax", "Gather")


# Per-layer sensitivity: the layers with the largest SQNR drop are the candidates (at most
# this many); each is then kept in float alone and the model's output error measured.
SENSITIVITY_CANDIDATES = 24


WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


FUSED_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish")


_RANKINGS: dict[tuple, list[str]] = {}  # per float model, data and scheme, within a run


def sensitive_nodes(float_path: Path, qdq_path: Path, request: ExportRequest,
                    cache: Path) -> list[str]:
    """Nodes ranked by how much keeping each alone in float reduces the output error.

    A proxy picks the candidates: the drop in signal-to-quantization-noise ratio (dB,
    against the float model on calibration samples) from a node's worst input to its
    output, measured with onnxruntime's qdq_loss_debug tools. The proxy alone misleads
    (on silero-vad it ranks the STFT first, whose float copy changes nothing, while the
    encoder convolutions decide the speech call), so each candidate is then measured:
    quantized with only it kept float, run on the same samples, its relative output error
    compared. Ranked most helpful first; the rest follow in proxy order.
    """
    from edgecomp.hashing import file_sha256

    key = (file_sha256(float_path), request.calib.sha256, request.calibration_method,
           request.per_channel, request.reduce_range, request.activation_symmetric)
    if key in _RANKINGS:
        return _RANKINGS[key]
    names, samples = fed_samples(float_path, request, limit=SENSITIVITY_SAMPLES)
    proxy = _sqnr_drop_ranking(float_path, qdq_path, names, samples)
    ops = op_types(float_path)
    candidates = [n for n in proxy if ops.get(n) in WEIGHTED_OPS][:SENSITIVITY_CANDIDATES]
    reference = _outputs(float_path, names, samples)
    baseline = _relative_error(reference, _outputs(qdq_path, names, samples))
    trial = qdq_path.parent / "trial.onnx"
    gains = []
    for index, node in enumerate(candidates):
        if request.progress is not None:
            request.progress("ranking layers for float", index, len(candidates))
        qdq(float_path, trial, request, cache, exclude=with_feeding_chain(float_path, [node]))
        gains.append((baseline - _relative_error(reference, _outputs(trial, names, samples)),
                      node))
    trial.unlink(missing_ok=True)
    measured = [node for _, node in sorted(gains, key=lambda g: -g[0])]
    ranked = measured + [n for n in proxy if n not in measured]
    _RANKINGS[key] = ranked
    return ranked


def op_types(path: Path) -> dict[str, str]:
    import onnx

    return {n.name: n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}


def _outputs(path: Path, names: list[str], samples) -> list[np.ndarray]:
    """Every output of every sample, flattened and concatenated per sample."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    return [np.concatenate([np.asarray(v, dtype=np.float64).ravel()
                            for v in session.run(None, dict(zip(names, sample)))])
            for sample in samples]


def _relative_error(reference: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Squared error over squared reference, summed over samples."""
    import numpy as np

    num = sum(float(np.sum((r - o) ** 2)) for r, o in zip(reference, outputs))
    den = sum(float(np.sum(r ** 2)) for r in reference)
    return num / den if den else num


def _sqnr_drop_ranking(float_path: Path, qdq_path: Path, names: list[str], samples
                       ) -> list[str]:
    """Quantized nodes ordered by SQNR drop (qdq_loss_debug), largest first."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                         compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    work = qdq_path.parent
    activations = {}
    for kind, path in (("float", float_path), ("qdq", qdq_path)):
        augmented = work / f"{kind}.debug.onnx"
        modify_model_output_intermediate_tensors(str(path), str(augmented))
        activations[kind] = collect_activations(str(augmented),
                                                CalibrationReader(names, samples))
        augmented.unlink(missing_ok=True)
    errors = compute_activation_error(create_activation_matching(activations["qdq"],
                                                                 activations["float"]))
    sqnr = {name: e["xmodel_err"] for name, e in errors.items() if "xmodel_err" in e}
    graph = onnx.load(str(float_path)).graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def effective_output(tensor: str) -> str | None:
        """The tensor itself, or for a layer fused with its activation (Conv+Relu keeps no
        QDQ in between) the activation's output."""
        while tensor not in sqnr:
            users = consumers.get(tensor, [])
            if len(users) != 1 or users[0].op_type not in FUSED_ACTIVATIONS:
                return None
            tensor = users[0].output[0]
        return tensor

    drops = []
    for node in graph.node:
        if node.op_type not in QUANTIZED_OPS or not node.output:
            continue
        output = effective_output(node.output[0])
        if output is None:
            continue
        before = [sqnr[i] for i in node.input if i in sqnr]
        drop = (min(before) if before else 100.0) - sqnr[output]
        drops.append((drop, node.name))
    return [name for _, name in sorted(drops, key=lambda d: -d[0])]
