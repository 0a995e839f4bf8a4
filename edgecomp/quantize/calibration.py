"""ONNX static int8 with onnxruntime's tools: activation ranges from calibration data, and
the QDQ graph built from them.

Calibration data streams through onnxruntime's `CalibrationDataReader` in chunks, so memory
stays bounded (onnxruntime#10503); the ranges are computed once and kept in a cache file
that every QDQ graph of the same model and data reads (the search's candidates and the
sensitivity trials).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp.errors import InputError
from edgecomp.vocab import CalibrationMethod

if TYPE_CHECKING:
    import numpy as np

    from edgecomp.export.base import ExportRequest


class CalibrationReader:
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


def fed_samples(path: Path, request: ExportRequest, *, limit: int | None = None
                 ) -> tuple[list[str], list[tuple[np.ndarray, ...]]]:
    """The calibration samples (the first `limit`) as the graph at `path` is fed: only the
    inputs it reads, since an exporter may drop one the graph never uses."""
    names = [spec.name for spec in request.inputs]
    fed = graph_input_names(path)
    unknown = [n for n in fed if n not in names]
    if unknown:
        raise InputError(f"the ONNX graph takes inputs {', '.join(fed)} but the model was "
                         f"given {', '.join(names)}.")
    count = len(request.calib) if limit is None else min(limit, len(request.calib))
    samples = [tuple(a for n, a in zip(names, sample) if n in fed)
               for _, sample in zip(range(count), request.calibration_samples())]
    return [n for n in names if n in fed], samples


def graph_input_names(path: Path) -> list[str]:
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


def calibrate(src: Path, work: Path, request: ExportRequest) -> Path:
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
    names, samples = fed_samples(src, request)
    for start in range(0, len(samples), CALIBRATION_CHUNK):
        chunk = samples[start:start + CALIBRATION_CHUNK]
        calibrator.collect_data(CalibrationReader(names, chunk))
        if request.progress is not None:
            request.progress("calibrating (ONNX int8)", start + len(chunk), len(samples))
    cache = work / "calibration.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return cache


def qdq(src: Path, dst: Path, request: ExportRequest, cache: Path, *,
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
