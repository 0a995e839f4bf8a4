"""ONNX export via torch.onnx, quantized with onnxruntime's own tools.

fp32: torch.onnx (dynamo exporter). int8: static QDQ with calibration (per-channel
weights; MinMax, Entropy or Percentile activation ranges). dynamic-int8: weights int8,
activations quantized at run time, which suits MatMul-heavy models (FIELD.md: dynamic
quantization of convolutions is slow on CPU, so static QDQ is our default for them).

torch, onnx and onnxruntime are imported inside the functions: the registry imports this
module to read the exporter's facts, and `edgecomp --help` must stay instant.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgecomp.errors import ExportError, InputError
from edgecomp.export import register_exporter
from edgecomp.export.base import (Artifact, CalibrationMethod, ExportRequest, Format, Precision,
                                  artifact_path, check_request, finish_artifact, tool_versions)
from edgecomp.export.inspect import MIN_WEIGHT_ELEMENTS, integer_share
from edgecomp.export.quiet import native_output_captured

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
OPSET = 18


@register_exporter
class OnnxExporter:
    """Exports to an .onnx file run by onnxruntime."""

    format: ClassVar[Format] = Format.ONNX
    suffix: ClassVar[str] = ".onnx"
    precisions: ClassVar[frozenset[Precision]] = frozenset(
        {Precision.FP32, Precision.DYNAMIC_INT8, Precision.INT8})
    needs_module: ClassVar[bool] = False  # exports from a torch module or re-quantizes an .onnx
    declined: ClassVar[dict[Precision, str]] = {
        Precision.FP16: "onnxruntime's CPU provider runs fp16 models slower than fp32"}

    def export(self, request: ExportRequest) -> Artifact:
        check_request(self, request)
        path = artifact_path(request, self.suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            work = Path(tmp)
            float_path = work / "float.onnx"
            if request.onnx_path is not None:
                shutil.copyfile(request.onnx_path, float_path)
            else:
                _torch_to_onnx(request, float_path)
            result = work / "result.onnx"
            if request.precision == Precision.FP32:
                shutil.copyfile(float_path, result)
            else:
                prepared = work / "prepared.onnx"
                with native_output_captured():
                    _preprocess(float_path, prepared)
                    if request.precision == Precision.INT8:
                        _quantize_static(prepared, result, request)
                    else:
                        _quantize_dynamic(prepared, result, request)
            details = {"tools": tool_versions("onnx", "onnxruntime", "onnxscript"),
                       "reduce_range": request.reduce_range}
            details.update(self.inspect(result))  # read back before it takes the final name
            result.replace(path)  # same directory: an atomic rename, never a partial file
        return finish_artifact(request, path=path, fmt=self.format,
                               calibration_method=request.calibration_method.value,
                               details=details)

    def inspect(self, path: Path) -> dict[str, Any]:
        """I/O, op counts and initializer bytes by dtype of an .onnx file."""
        import numpy as np
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        graph = model.graph
        initializer_names = {init.name for init in graph.initializer}

        def entry(value) -> dict[str, Any]:
            tensor_type = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1)
                     for d in tensor_type.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            return {"name": value.name, "shape": shape, "dtype": np.dtype(dtype).name}

        weight_bytes: Counter = Counter()
        for init in graph.initializer:
            array = numpy_helper.to_array(init)
            if array.size >= MIN_WEIGHT_ELEMENTS:
                weight_bytes[array.dtype.name] += int(array.nbytes)
        ops = Counter(node.op_type for node in graph.node)
        return {"inputs": [entry(v) for v in graph.input if v.name not in initializer_names],
                "outputs": [entry(v) for v in graph.output],
                "ops": dict(sorted(ops.items())),
                "opset": [{"domain": o.domain or "ai.onnx", "version": o.version}
                          for o in model.opset_import],
                **integer_share(weight_bytes)}


def _torch_to_onnx(request: ExportRequest, out: Path) -> None:
    import torch

    module = request.module
    module.eval()
    try:
        with native_output_captured():
            program = torch.onnx.export(module, (request.example_input,), dynamo=True,
                                        opset_version=OPSET, input_names=["input"],
                                        output_names=["output"], verbose=False)
        program.save(str(out))
        _strip_debug_metadata(out)
    except Exception as exc:  # torch.onnx raises many unrelated types; all mean "cannot export"
        raise ExportError(f"torch.onnx could not export {request.model_name}: "
                          f"{str(exc).strip().splitlines()[0][:300]}. Run with --debug for the "
                          "exporter's report.") from exc


def _strip_debug_metadata(path: Path) -> None:
    """Drop the exporter's per-node stack traces and scopes.

    They hold local file paths and make up a fifth of a small model's file; runtimes
    never read them.
    """
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in (*model.graph.value_info, *model.graph.input, *model.graph.output,
                  *model.graph.initializer):
        del value.metadata_props[:]
    onnx.save(model, str(path))


def _preprocess(src: Path, dst: Path) -> None:
    """Shape inference and graph optimisation, which onnxruntime recommends before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    except Exception as exc:  # the pre-processor is optional; quantize the raw graph instead
        log.warning("onnxruntime pre-processing failed (%s); quantizing the model as exported",
                    exc)
        shutil.copyfile(src, dst)


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol over our calibration array, batch 1."""

    def __init__(self, input_name: str, x: np.ndarray):
        self.input_name = input_name
        self.x = x
        self.index = 0

    def get_next(self):
        if self.index >= len(self.x):
            return None
        sample = {self.input_name: self.x[self.index:self.index + 1]}
        self.index += 1
        return sample

    def rewind(self):
        self.index = 0


def _input_name(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in initializers]
    if len(names) != 1:
        raise InputError(f"int8 calibration supports models with one input; this one has "
                         f"{len(names)} ({', '.join(names)}).")
    return names[0]


# Histogram settings for Entropy and Percentile: onnxruntime's defaults (128 bins for
# entropy, equal to the quantized bins) leave no threshold to search, so Entropy would
# equal MinMax; 2048 bins is the choice TensorRT's entropy calibrator documents.
HISTOGRAM_BINS = 2048
CALIBRATION_CHUNK = 32


def _calibrate(src: Path, work: Path, request: ExportRequest) -> Path:
    """Activation ranges, streamed in chunks so memory stays bounded (onnxruntime#10503).

    Returns a calibration cache file that quantize_static reads instead of calibrating.
    """
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    method, options = {
        CalibrationMethod.MINMAX: (OrtMethod.MinMax, {}),
        CalibrationMethod.ENTROPY: (OrtMethod.Entropy, {"num_bins": HISTOGRAM_BINS,
                                                        "num_quantized_bins": 128}),
        CalibrationMethod.PERCENTILE: (OrtMethod.Percentile, {"num_bins": HISTOGRAM_BINS,
                                                              "percentile": 99.999}),
    }[request.calibration_method]
    calibrator = create_calibrator(src, augmented_model_path=str(work / "augmented.onnx"),
                                   calibrate_method=method, extra_options=options)
    name, x = _input_name(src), request.calib.x
    for start in range(0, len(x), CALIBRATION_CHUNK):
        chunk = x[start:start + CALIBRATION_CHUNK]
        calibrator.collect_data(_CalibrationReader(name, chunk))
        if request.progress is not None:
            request.progress("calibrating (ONNX int8)", min(start + len(chunk), len(x)), len(x))
    cache = work / "calibration.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return cache


def _quantize_static(src: Path, dst: Path, request: ExportRequest) -> None:
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    methods = {CalibrationMethod.MINMAX: OrtMethod.MinMax,
               CalibrationMethod.ENTROPY: OrtMethod.Entropy,
               CalibrationMethod.PERCENTILE: OrtMethod.Percentile}
    cache = _calibrate(src, dst.parent, request)
    quantize_static(str(src), str(dst), None, quant_format=QuantFormat.QDQ,
                    per_channel=request.per_channel, reduce_range=request.reduce_range,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=methods[request.calibration_method],
                    calibration_cache_path=str(cache),
                    extra_options={"ActivationSymmetric": request.activation_symmetric,
                                   "WeightSymmetric": True})


def _quantize_dynamic(src: Path, dst: Path, request: ExportRequest) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=request.per_channel,
                     reduce_range=request.reduce_range, weight_type=QuantType.QInt8)
