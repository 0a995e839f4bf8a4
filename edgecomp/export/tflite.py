"""LiteRT/TFLite export via litert-torch: fp32, fp16, dynamic-range int8 and calibrated full int8.

Full int8 uses PT2E (torchao) with litert-torch's quantizer: per-channel symmetric
weights, histogram-calibrated per-tensor activations (asymmetric, or symmetric with zero
point 0 on request). Weight-only fp16 and dynamic-range int8 are applied to the fp32
flatbuffer by ai-edge-quantizer, the LiteRT team's tool.

torch and the converters are imported inside the functions: the registry imports this
module to read the exporter's facts, and `edgecomp --help` must stay instant.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgecomp.atomic import atomic_path
from edgecomp.errors import ExportError
from edgecomp.export import register_exporter
from edgecomp.export.base import (Artifact, ExportRequest, Format, Precision, artifact_path,
                                  check_request, finish_artifact, tool_versions)
from edgecomp.export.inspect import MIN_WEIGHT_ELEMENTS, integer_share, tensor_entry
from edgecomp.export.quiet import native_output_captured

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")


@register_exporter
class TFLiteExporter:
    """Exports a torch module to a .tflite flatbuffer run by the LiteRT interpreter."""

    format: ClassVar[Format] = Format.TFLITE
    suffix: ClassVar[str] = ".tflite"
    precisions: ClassVar[frozenset[Precision]] = frozenset(
        {Precision.FP32, Precision.FP16, Precision.DYNAMIC_INT8, Precision.INT8})
    needs_module: ClassVar[bool] = True
    declined: ClassVar[dict[Precision, str]] = {}

    def export(self, request: ExportRequest) -> Artifact:
        check_request(self, request)
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
        details = {"tools": tool_versions("litert-torch", "ai-edge-litert", "ai-edge-quantizer",
                                          "torchao")}
        with atomic_path(path) as tmp:  # read back before it takes the artifact's name
            tmp.write_bytes(data)
            with native_output_captured():
                details.update(self.inspect(tmp))
        return finish_artifact(request, path=path, fmt=self.format,
                               calibration_method="histogram", details=details)

    def inspect(self, path: Path) -> dict[str, Any]:
        """I/O, op counts and weight bytes by dtype of a .tflite file, read with the interpreter."""
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path),
                                  experimental_preserve_all_tensors=False)
        inputs = [tensor_entry(d) for d in interpreter.get_input_details()]
        outputs = [tensor_entry(d) for d in interpreter.get_output_details()]
        ops = Counter(op["op_name"] for op in interpreter._get_ops_details())
        # Constant tensors (weights, biases) are those with data before allocation.
        weight_bytes: Counter = Counter()
        for detail in interpreter.get_tensor_details():
            try:
                data = interpreter.get_tensor(detail["index"])
            except ValueError:
                continue
            if data.size >= MIN_WEIGHT_ELEMENTS and detail["name"] and \
                    "serving_default" not in detail["name"]:
                weight_bytes[np.dtype(detail["dtype"]).name] += int(data.nbytes)
        return {"inputs": inputs, "outputs": outputs, "ops": dict(sorted(ops.items())),
                **integer_share(weight_bytes)}


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


def _quantization_config(request: ExportRequest):
    """litert-torch's int8 config: symmetric weights; activations affine unless asked otherwise.

    `get_symmetric_quantization_config` has no switch for activations (its "symmetric"
    is about weights), but litert-torch's annotators accept per-tensor symmetric
    activation specs, so the activation spec is replaced (verified: zero points all 0).
    """
    import dataclasses

    import torch
    from litert_torch.quantize import pt2e_quantizer

    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=request.per_channel)
    if not request.activation_symmetric:
        return config
    activation = dataclasses.replace(config.input_activation, qscheme=torch.per_tensor_symmetric)
    return dataclasses.replace(config, input_activation=activation, output_activation=activation)


def _convert_int8(module: torch.nn.Module, example, request: ExportRequest) -> bytes:
    """PT2E static int8: export, insert observers, calibrate on the user's data, convert."""
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(_quantization_config(request))
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



