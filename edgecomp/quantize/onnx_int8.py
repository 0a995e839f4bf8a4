"""An ONNX graph quantized to int8: static QDQ (with the layers that add the most error kept
in float when asked), dynamic int8, and the check that something really was quantized."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp.errors import ExportError
from edgecomp.quantize.calibration import calibrate, qdq
from edgecomp.quantize.sensitivity import (WEIGHTED_OPS, op_types, sensitive_nodes,
                                           with_feeding_chain)

if TYPE_CHECKING:
    from edgecomp.export.base import ExportRequest


def quantize_static(src: Path, dst: Path, request: ExportRequest) -> list[str]:
    """Static QDQ int8; with `float_layers`, the layers that add the most error stay float.

    Returns the names of the nodes kept in float.
    """
    cache = calibrate(src, dst.parent, request)
    qdq(src, dst, request, cache, exclude=[])
    if request.float_layers <= 0:
        return []
    weighted = sum(1 for op in op_types(src).values() if op in WEIGHTED_OPS)
    if request.float_layers > max(1, weighted // MAX_FLOAT_SHARE):
        raise ExportError(f"keeping {request.float_layers} of {weighted} layers in float "
                          f"would leave less than {100 - 100 // MAX_FLOAT_SHARE} % of "
                          f"{request.model_name} in int8; that is not an int8 model.")
    ranked = sensitive_nodes(src, dst, request, cache)
    kept = with_feeding_chain(src, ranked[:request.float_layers])
    qdq(src, dst, request, cache, exclude=kept)
    return kept


MAX_FLOAT_SHARE = 4  # mixed precision keeps at most a quarter of the layers (at least one)


def check_quantized(path: Path, request: ExportRequest) -> None:
    """Refuse an "int8" artifact in which nothing was quantized."""
    import onnx

    ops = {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}
    if ops & {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
              "ConvInteger", "QLinearConv", "QLinearMatMul"}:
        return
    control = ops & {"If", "Loop", "Scan"}
    where = (f"its layers sit inside {', '.join(sorted(control))} subgraphs, which "
             "onnxruntime's quantizer does not reach" if control else
             "it has no layer onnxruntime quantizes")
    raise ExportError(f"{request.model_name}: {request.precision.value} quantization changed "
                      f"nothing because {where}; the artifact would be the float model under "
                      "an int8 name, so none was written. Export a graph without control flow "
                      "around its layers (e.g. one fixed to a single sample rate), or keep fp32.")


def quantize_dynamic(src: Path, dst: Path, request: ExportRequest) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=request.per_channel,
                     reduce_range=request.reduce_range, weight_type=QuantType.QInt8)
