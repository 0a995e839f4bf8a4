"""Running an artifact here, in onnxruntime or LiteRT with one thread: its inputs laid out
as the model wants them, its outputs, interleaved timing, and its integer weight share.

Used by quant_peers.py (the ai-edge-quantizer and NNCF peers calibrate with `tflite_feeds`
and `onnx_feeds`; its child process runs `outputs` and `latency`).

`outputs(path, data)` runs an artifact sample by sample with one thread and returns its
float outputs; `latency(paths, data)` times artifacts interleaved in one process.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Data = dict[str, np.ndarray]


# --------------------------------------------------------------------------- inputs

def _natural(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _shaped(sample: np.ndarray, shape: list | None) -> np.ndarray:
    """One sample laid out as the model's input: static shapes by reshape, dynamic ones
    by adding the batch axis when the sample lacks it."""
    if shape is None:
        return sample
    if all(isinstance(d, int) and d > 0 for d in shape):
        return sample.reshape(shape)
    if sample.ndim == len(shape):
        return sample
    if sample.ndim + 1 == len(shape):
        return sample[None]
    return sample.reshape([d if isinstance(d, int) and d > 0 else -1 for d in shape])


def _onnx_session(path: Path, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _match(model_names: list[str], data: Data) -> dict[str, str]:
    """Model input name -> data key: by name where they agree, else by position (the
    data's keys in the model's input order; LiteRT names them args_0, args_1... and
    `_lite` lists them in that order)."""
    if set(model_names) <= set(data):
        return {n: n for n in model_names}
    keys = list(data)
    if len(keys) != len(model_names):
        raise ValueError(f"the model takes {len(model_names)} inputs "
                         f"({', '.join(model_names)}); the data has {', '.join(keys)}")
    return dict(zip(model_names, keys))


def onnx_feeds(path: Path, data: Data) -> list[dict[str, np.ndarray]]:
    """One input dict per sample, shaped and typed as the ONNX model wants."""
    import onnx

    from edgecomp.model.onnx import onnx_inputs

    model = onnx.load(str(path), load_external_data=False)
    specs = [(spec.name, list(spec.shape), np.dtype(spec.dtype)) for spec in onnx_inputs(model)]
    keys = _match([s[0] for s in specs], data)
    count = min(len(v) for v in data.values())
    return [{name: _shaped(np.asarray(data[keys[name]][i]), shape).astype(dtype)
             for name, shape, dtype in specs} for i in range(count)]


def _quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    scale, zero = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and scale and np.issubdtype(x.dtype, np.floating):
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if np.issubdtype(y.dtype, np.integer) and scale:
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    return y.astype(np.float32)


@dataclass
class _Lite:
    """A LiteRT interpreter with its signature's inputs and outputs in order."""

    interpreter: object
    signature: str
    inputs: dict[str, dict]     # signature input name -> details (index, shape, dtype...)
    outputs: list[dict]         # details, in signature output order

    def feeds(self, data: Data) -> list[dict[str, np.ndarray]]:
        """Per sample: {signature input name: float/int array in the model's shape}."""
        keys = _match(list(self.inputs), data)
        count = min(len(v) for v in data.values())
        return [{name: _shaped(np.asarray(data[keys[name]][i]),
                               [int(d) for d in detail["shape"]])
                 for name, detail in self.inputs.items()} for i in range(count)]

    def set(self, feed: dict[str, np.ndarray]) -> None:
        for name, x in feed.items():
            detail = self.inputs[name]
            self.interpreter.set_tensor(detail["index"], _quantize_input(x, detail))

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.set(feed)
        self.interpreter.invoke()
        return [_dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self.outputs]


def _lite(path: Path, threads: int = 1) -> _Lite:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    signatures = interpreter.get_signature_list()
    if signatures:
        signature = next(iter(signatures))
        runner = interpreter.get_signature_runner(signature)
        inputs = runner.get_input_details()
        outs = runner.get_output_details()
        outputs = [outs[k] for k in sorted(outs, key=_natural)]
    else:  # no signature: the interpreter's own input and output order
        signature = "serving_default"
        inputs = {d["name"]: d for d in interpreter.get_input_details()}
        outputs = interpreter.get_output_details()
    inputs = {k: inputs[k] for k in sorted(inputs, key=_natural)}
    return _Lite(interpreter, signature, inputs, outputs)


def tflite_feeds(path: Path, data: Data) -> tuple[str, list[dict[str, np.ndarray]]]:
    """The signature key and one float input dict per sample (for calibration)."""
    lite = _lite(path)
    feeds = lite.feeds(data)
    return lite.signature, [{k: v.astype(lite.inputs[k]["dtype"]) for k, v in f.items()}
                            for f in feeds]


# --------------------------------------------------------------------------- running

class _Onnx:
    def __init__(self, path: Path, threads: int = 1):
        self.session = _onnx_session(path, threads)
        self.path = path

    def feeds(self, data: Data):
        return onnx_feeds(self.path, data)

    def run(self, feed):
        return [np.asarray(y, dtype=np.float32) for y in self.session.run(None, feed)]


def _runner(path: Path, threads: int = 1):
    return _lite(path, threads) if path.suffix == ".tflite" else _Onnx(path, threads)


def outputs(path: Path, data: Data) -> list[np.ndarray]:
    """Run `path` on every sample of `data`, one at a time, with one thread.

    Returns one float32 array per model output, samples stacked on a new first axis
    (int8 outputs dequantized with their scale and zero point)."""
    runner = _runner(Path(path))
    per_sample = [runner.run(feed) for feed in runner.feeds(data)]
    return [np.stack([s[k] for s in per_sample]) for k in range(len(per_sample[0]))]


def latency(paths: list[Path], data: Data, *, rounds: int = 10, slot_seconds: float = 0.25,
            warmup_seconds: float = 1.0, min_runs: int = 3) -> dict[str, dict]:
    """Time `paths` in this process, one thread each, interleaved.

    Every artifact is loaded first and warmed up. Then `rounds` rounds: in each, every
    artifact in turn (the order rotating by one each round) runs for `slot_seconds` (at
    least `min_runs` runs); the first run of each slot is dropped (it pays for the switch),
    the others are timed one by one with time.perf_counter around set-inputs + run.
    Returns {path: {"p50_ms", "runs"}} with the median over all of a path's timed runs.
    """
    runners = []
    for path in paths:
        runner = _runner(Path(path))
        feed = runner.feeds({k: v[:1] for k, v in data.items()})[0]
        if isinstance(runner, _Lite):
            def call(r=runner, f=feed):
                r.set(f)
                r.interpreter.invoke()
        else:
            def call(s=runner.session, f=feed):
                s.run(None, f)
        runners.append((str(path), call))
    for _, call in runners:
        end = time.perf_counter() + warmup_seconds
        while time.perf_counter() < end:
            call()
    times: dict[str, list[float]] = {p: [] for p, _ in runners}
    for r in range(rounds):
        order = runners[r % len(runners):] + runners[:r % len(runners)]
        for path, call in order:
            call()
            end = time.perf_counter() + slot_seconds
            count = 0
            while count < min_runs or time.perf_counter() < end:
                start = time.perf_counter()
                call()
                times[path].append(time.perf_counter() - start)
                count += 1
    return {p: {"p50_ms": float(np.median(t)) * 1e3, "runs": len(t)} for p, t in times.items()}


def integer_weight_share(path: Path, min_elements: int = 16) -> float:
    """Share of the weight bytes (constants of at least `min_elements` values) stored as
    integers: 0 means the tool quantized nothing. ONNX subgraphs (If, Loop) included."""
    path = Path(path)
    sizes: dict[bool, int] = {True: 0, False: 0}
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        def tensors(graph):
            yield from graph.initializer
            for node in graph.node:
                for attr in node.attribute:
                    if attr.type == onnx.AttributeProto.TENSOR:
                        yield attr.t
                    elif attr.type == onnx.AttributeProto.GRAPH:
                        yield from tensors(attr.g)
                    elif attr.type == onnx.AttributeProto.GRAPHS:
                        for g in attr.graphs:
                            yield from tensors(g)

        model = onnx.load(str(path))
        for tensor in tensors(model.graph):
            array = numpy_helper.to_array(tensor)
            if array.size >= min_elements:
                sizes[np.issubdtype(array.dtype, np.integer)] += array.nbytes
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        for detail in interpreter.get_tensor_details():
            try:  # constants are the tensors with data before allocation
                array = interpreter.get_tensor(detail["index"])
            except ValueError:
                continue
            if array.size >= min_elements and "serving_default" not in detail["name"]:
                sizes[np.issubdtype(array.dtype, np.integer)] += array.nbytes
    total = sizes[True] + sizes[False]
    return sizes[True] / total if total else 0.0
