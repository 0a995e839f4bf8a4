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

from edgecomp.errors import ExportError, InputError, first_line
from edgecomp.export import register_exporter
from edgecomp.export.base import (Artifact, CalibrationMethod, ExportRequest, Format, Precision,
                                  artifact_path, check_request, finish_artifact,
                                  tool_versions)
from edgecomp.export.inspect import MIN_WEIGHT_ELEMENTS, integer_share
from edgecomp.export.quiet import native_output_captured
from edgecomp.model.onnx import external_data_locations
from edgecomp.model.signature import flat_outputs

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
                            kept_float = _quantize_static(prepared, result, request)
                        else:
                            _quantize_dynamic(prepared, result, request)
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
                _check_quantized(result, request)
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


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol over a chunk of calibration samples."""

    def __init__(self, names: list[str], samples: list[tuple[np.ndarray, ...]]):
        self.names = names
        self.samples = samples
        self.index = 0

    def get_next(self):
        if self.index >= len(self.samples):
            return None
        sample = dict(zip(self.names, self.samples[self.index]))
        self.index += 1
        return sample

    def rewind(self):
        self.index = 0

    def __iter__(self):
        return (dict(zip(self.names, sample)) for sample in self.samples)


def _fed_samples(path: Path, request: ExportRequest, *, limit: int | None = None
                 ) -> tuple[list[str], list[tuple[np.ndarray, ...]]]:
    """The calibration samples (the first `limit`) as the graph at `path` is fed: only the
    inputs it reads, since an exporter may drop one the graph never uses."""
    names = [spec.name for spec in request.inputs]
    fed = _graph_input_names(path)
    unknown = [n for n in fed if n not in names]
    if unknown:
        raise InputError(f"the ONNX graph takes inputs {', '.join(fed)} but the model was "
                         f"given {', '.join(names)}.")
    count = len(request.calib) if limit is None else min(limit, len(request.calib))
    samples = [tuple(a for n, a in zip(names, sample) if n in fed)
               for _, sample in zip(range(count), request.calibration_samples())]
    return [n for n in names if n in fed], samples


def _graph_input_names(path: Path) -> list[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in initializers]


# Histogram settings. onnxruntime's entropy default (128 bins, equal to the quantized bins)
# leaves no threshold to search, so Entropy would equal MinMax. Its threshold search is
# pure Python and costs O(bins²) per tensor: 2048 bins (TensorRT's documented choice) took
# 55 s on EfficientNet-Lite0 where MinMax took 7 s; 512 bins keep the search meaningful at
# a sixteenth of the cost. Percentile has no search, so it keeps the finer histogram.
ENTROPY_BINS = 512
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
        CalibrationMethod.ENTROPY: (OrtMethod.Entropy, {"num_bins": ENTROPY_BINS,
                                                        "num_quantized_bins": 128}),
        CalibrationMethod.PERCENTILE: (OrtMethod.Percentile, {"num_bins": HISTOGRAM_BINS,
                                                              "percentile": 99.999}),
    }[request.calibration_method]
    calibrator = create_calibrator(src, augmented_model_path=str(work / "augmented.onnx"),
                                   calibrate_method=method, extra_options=options)
    names, samples = _fed_samples(src, request)
    for start in range(0, len(samples), CALIBRATION_CHUNK):
        chunk = samples[start:start + CALIBRATION_CHUNK]
        calibrator.collect_data(_CalibrationReader(names, chunk))
        if request.progress is not None:
            request.progress("calibrating (ONNX int8)", start + len(chunk), len(samples))
    cache = work / "calibration.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return cache


def _quantize_static(src: Path, dst: Path, request: ExportRequest) -> list[str]:
    """Static QDQ int8; with `float_layers`, the layers that add the most error stay float.

    Returns the names of the nodes kept in float.
    """
    cache = _calibrate(src, dst.parent, request)
    _qdq(src, dst, request, cache, exclude=[])
    if request.float_layers <= 0:
        return []
    weighted = sum(1 for op in _op_types(src).values() if op in WEIGHTED_OPS)
    if request.float_layers > max(1, weighted // MAX_FLOAT_SHARE):
        raise ExportError(f"keeping {request.float_layers} of {weighted} layers in float "
                          f"would leave less than {100 - 100 // MAX_FLOAT_SHARE} % of "
                          f"{request.model_name} in int8; that is not an int8 model.")
    ranked = sensitive_nodes(src, dst, request, cache)
    kept = with_feeding_chain(src, ranked[:request.float_layers])
    _qdq(src, dst, request, cache, exclude=kept)
    return kept


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


def _qdq(src: Path, dst: Path, request: ExportRequest, cache: Path, *,
         exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    methods = {CalibrationMethod.MINMAX: OrtMethod.MinMax,
               CalibrationMethod.ENTROPY: OrtMethod.Entropy,
               CalibrationMethod.PERCENTILE: OrtMethod.Percentile}
    quantize_static(str(src), str(dst), None, quant_format=QuantFormat.QDQ,
                    per_channel=request.per_channel, reduce_range=request.reduce_range,
                    activation_type=QuantType.QUInt8 if request.activation_dtype == "uint8"
                    else QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=methods[request.calibration_method],
                    calibration_cache_path=str(cache), nodes_to_exclude=exclude,
                    extra_options={"ActivationSymmetric": request.activation_symmetric,
                                   "WeightSymmetric": True})


SENSITIVITY_SAMPLES = 16
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose", "Add", "Mul", "AveragePool",
                 "GlobalAveragePool", "Concat", "Softmax", "Gather")


# Per-layer sensitivity: the layers with the largest SQNR drop are the candidates (at most
# this many); each is then kept in float alone and the model's output error measured.
SENSITIVITY_CANDIDATES = 24
WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
MAX_FLOAT_SHARE = 4  # mixed precision keeps at most a quarter of the layers (at least one)
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
    names, samples = _fed_samples(float_path, request, limit=SENSITIVITY_SAMPLES)
    proxy = _sqnr_drop_ranking(float_path, qdq_path, names, samples)
    ops = _op_types(float_path)
    candidates = [n for n in proxy if ops.get(n) in WEIGHTED_OPS][:SENSITIVITY_CANDIDATES]
    reference = _outputs(float_path, names, samples)
    baseline = _relative_error(reference, _outputs(qdq_path, names, samples))
    trial = qdq_path.parent / "trial.onnx"
    gains = []
    for index, node in enumerate(candidates):
        if request.progress is not None:
            request.progress("ranking layers for float", index, len(candidates))
        _qdq(float_path, trial, request, cache, exclude=with_feeding_chain(float_path, [node]))
        gains.append((baseline - _relative_error(reference, _outputs(trial, names, samples)),
                      node))
    trial.unlink(missing_ok=True)
    measured = [node for _, node in sorted(gains, key=lambda g: -g[0])]
    ranked = measured + [n for n in proxy if n not in measured]
    _RANKINGS[key] = ranked
    return ranked


def _op_types(path: Path) -> dict[str, str]:
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
                                                _CalibrationReader(names, samples))
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


def _check_quantized(path: Path, request: ExportRequest) -> None:
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


def _quantize_dynamic(src: Path, dst: Path, request: ExportRequest) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=request.per_channel,
                     reduce_range=request.reduce_range, weight_type=QuantType.QInt8)

