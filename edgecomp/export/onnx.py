"""ONNX export via torch.onnx, quantized with onnxruntime's own tools (`edgecomp.quantize`).

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
from typing import Any, ClassVar

from edgecomp.errors import ExportError, InputError, first_line
from edgecomp.export import Int8Options, register_exporter
from edgecomp.export.base import (Artifact, CalibrationMethod, ExportRequest, Format, Precision,
                                  artifact_path, check_request, finish_artifact, tool_versions)
from edgecomp.export.inspect import MIN_WEIGHT_ELEMENTS, integer_share
from edgecomp.export.quiet import native_output_captured
from edgecomp.model.onnx import external_data_locations
from edgecomp.model.signature import flat_outputs
from edgecomp.quantize.onnx_int8 import check_quantized, quantize_dynamic, quantize_static

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
    # onnxruntime's three calibrators; the layers that add the most error can stay float.
    int8_options: ClassVar[Int8Options] = Int8Options(
        calibrations=(CalibrationMethod.MINMAX, CalibrationMethod.PERCENTILE,
                      CalibrationMethod.ENTROPY), float_layers=True)

    def export(self, request: ExportRequest) -> Artifact:
        check_request(self, request)
        path = artifact_path(request, self.suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            work = Path(tmp)
            float_path = work / "float.onnx"
            if request.onnx_path is not None:
                _self_contained_copy(request.onnx_path, float_path)
            else:
                _torch_to_onnx(request, float_path)
            result = work / "result.onnx"
            if request.precision == Precision.FP32:
                shutil.copyfile(float_path, result)
            else:
                prepared = work / "prepared.onnx"
                with native_output_captured():
                    _preprocess(float_path, prepared)
                    try:
                        if request.precision == Precision.INT8:
                            kept_float = quantize_static(prepared, result, request)
                        else:
                            quantize_dynamic(prepared, result, request)
                    except (InputError, ExportError):
                        raise
                    except Exception as exc:  # the quantizer raises many types for one cause
                        raise ExportError(
                            f"onnxruntime could not quantize {request.model_name} to "
                            f"{request.precision.value} with {request.calibration_method.value}"
                            f" calibration: {first_line(exc)}") from exc
            details = {"tools": tool_versions("onnx", "onnxruntime", "onnxscript"),
                       "reduce_range": request.reduce_range}
            if request.precision == Precision.INT8:
                details["float_layers"] = kept_float
                details["activation_dtype"] = request.activation_dtype
            if request.precision != Precision.FP32:
                check_quantized(result, request)
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


def _self_contained_copy(src: Path, dst: Path) -> None:
    """The source model as one file: weights it keeps in external data files beside it
    are read in (onnx refuses locations outside the model's folder, links and non-regular
    files) and written inline, so the artifact never depends on files it does not ship."""
    import onnx

    if not external_data_locations(onnx.load(str(src), load_external_data=False)):
        shutil.copyfile(src, dst)
        return
    onnx.save_model(onnx.load(str(src)), str(dst))


def _torch_to_onnx(request: ExportRequest, out: Path) -> None:
    import torch

    module = request.module
    module.eval()
    examples = request.example_inputs
    try:
        with native_output_captured():
            program = torch.onnx.export(module, examples, dynamo=True,
                                        opset_version=OPSET,
                                        input_names=[spec.name for spec in request.inputs],
                                        output_names=_output_names(module, examples),
                                        verbose=False)
        program.save(str(out))
        _strip_debug_metadata(out)
    except Exception as exc:  # torch.onnx raises many unrelated types; all mean "cannot export"
        raise ExportError(f"torch.onnx could not export {request.model_name}: "
                          f"{str(exc).strip().splitlines()[0][:300]}. Run with --debug for the "
                          "exporter's report.") from exc


def _output_names(module, examples) -> list[str]:
    """"output" for a model with one output; output0, output1, ... for several."""
    import torch

    with torch.no_grad():
        count = len(flat_outputs(module(*examples)))
    return ["output"] if count == 1 else [f"output{k}" for k in range(count)]


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
