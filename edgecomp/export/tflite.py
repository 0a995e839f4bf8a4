"""LiteRT/TFLite export via litert-torch: fp32, fp16, dynamic-range int8 and calibrated full int8.

Full int8 uses PT2E (torchao) with litert-torch's quantizer: per-channel symmetric
weights, histogram-calibrated per-tensor activations. Weight-only fp16 and dynamic-range
int8 are applied to the fp32 flatbuffer by ai-edge-quantizer, the LiteRT team's tool.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import torch

from edgecomp.errors import ExportError, InputError
from edgecomp.export.base import (Artifact, ExportRequest, Precision, artifact_path,
                                  atomic_write_bytes, finish_artifact, needs_calibration,
                                  register_exporter, tool_versions)
from edgecomp.export.inspect import inspect_tflite
from edgecomp.export.quiet import native_output_captured

log = logging.getLogger(__name__)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")


@register_exporter
class TFLiteExporter:
    """Exports a torch module to a .tflite flatbuffer run by the LiteRT interpreter."""

    format = "tflite"
    suffix = ".tflite"

    def export(self, request: ExportRequest) -> Artifact:
        if request.module is None:
            raise InputError("LiteRT export needs a PyTorch model; an ONNX file can only be "
                             "exported to ONNX targets (use --format onnx).")
        needs_calibration(request)
        path = artifact_path(request, self.suffix)
        module = request.module
        module.eval()  # (an exported program's eval() returns None)
        example = (request.example_input,)
        try:
            with native_output_captured():
                if request.precision == Precision.INT8:
                    data = _convert_int8(module, example, request)
                else:
                    data = _litert_convert(module, example)
                    if request.precision != Precision.FP32:
                        data = _ai_edge_quantize(data, request.precision)
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
            raise ExportError(f"litert-torch could not convert {request.model_name} to "
                              f"{request.precision.value} LiteRT: {_first_line(exc)}. Run with "
                              "--debug for the converter's trace; unsupported ops are the usual "
                              "cause.") from exc
        if request.precision == Precision.INT8 and request.io_dtype == "float32":
            from edgecomp.export.tflite_io import float_io

            data = float_io(data)
        atomic_write_bytes(path, data)
        details = {"tools": tool_versions("litert-torch", "ai-edge-litert", "ai-edge-quantizer",
                                          "torchao")}
        with native_output_captured():
            details.update(inspect_tflite(path))
        return finish_artifact(request, path=path, fmt=self.format, details=details)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300].rstrip(".") if text else type(exc).__name__


def _litert_convert(module, example, **kwargs) -> bytes:
    """Convert with litert-torch into flatbuffer bytes."""
    import litert_torch

    with tempfile.TemporaryDirectory() as tmp:
        edge_model = litert_torch.convert(module, example, **kwargs)
        out = Path(tmp) / "model.tflite"
        edge_model.export(str(out))
        return out.read_bytes()


def _convert_int8(module: torch.nn.Module, example, request: ExportRequest) -> bytes:
    """PT2E static int8: export, insert observers, calibrate on the user's data, convert."""
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=request.per_channel))
    graph = torch.export.export(module, example).module()
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    # Exported graphs start in training mode: calibrating so would update BatchNorm stats.
    move_exported_model_to_eval(graph)
    calib = request.calib.x
    with torch.no_grad():
        for index in range(len(calib)):
            graph(torch.from_numpy(calib[index:index + 1]))
            if request.progress is not None and (index % 32 == 31 or index == len(calib) - 1):
                request.progress("calibrating (LiteRT int8)", index + 1, len(calib))
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    move_exported_model_to_eval(graph)
    return _litert_convert(graph, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))


def _ai_edge_quantize(model_bytes: bytes, precision: Precision) -> bytes:
    """Weight-only fp16 or dynamic-range int8 with ai-edge-quantizer on an fp32 flatbuffer."""
    from ai_edge_quantizer import qtyping, quantizer, recipe

    qt = quantizer.Quantizer(bytearray(model_bytes))
    if precision == Precision.DYNAMIC_INT8:
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    else:
        qt.update_quantization_recipe(
            regex=".*",
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=qtyping.TensorQuantizationConfig(
                    num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                compute_precision=qtyping.ComputePrecision.FLOAT,
                explicit_dequantize=True,
            ),
        )
    result = qt.quantize()
    return bytes(result.quantized_model)



