"""Other tools' int8 quantizers, and the runner and timer that measure their artifacts.

Used by tools/bench/quantization. Every peer has the same signature:

    peer(fp32_path, calib, out_dir) -> Path of the quantized artifact

`calib` maps each model input name to an array with the sample axis first; sample i is
`calib[name][i]`, reshaped to the model's input shape. The onnxruntime and NNCF peers take
an fp32 .onnx file, the ai-edge-quantizer peers an fp32 .tflite file. Each peer uses its
tool's defaults apart from what its name says.

`outputs(path, data)` runs an artifact sample by sample with one thread and returns its
float outputs; `latency(paths, data)` times artifacts interleaved in one process.

The bench runs each step in a child process (`quant_peers.py quantize|outputs|latency ...`)
so that a peer that crashes or hangs becomes one failed row, not a failed run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
                "tensor(bool)": np.bool_, "tensor(float16)": np.float16}


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


# --------------------------------------------------------------------------- peers

def _out(out_dir: Path, fp32_path: Path, tag: str, suffix: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = fp32_path.name.split(".")[0]
    return out_dir / f"{stem}.{tag}{suffix}"


#: What a peer had to do differently from its recipe, for the table's note.
NOTES: list[str] = []


def _ort_preprocessed(fp32_path: Path, out_dir: Path) -> Path:
    """onnxruntime's recommended pre-processing (shape inference, graph optimization).

    Where it fails, the peer quantizes the model as it is and says so in NOTES: that is
    what a user of onnxruntime would do next, and it keeps the row comparable."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = _out(out_dir, fp32_path, "ort-preprocessed", ".onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre))
    except Exception as exc:  # symbolic shape inference raises anything
        NOTES.append(f"quant_pre_process failed ({first_line(exc)}); quantized without it")
        return fp32_path
    NOTES.append("time includes quant_pre_process")
    return pre


def _ort_static(fp32_path: Path, calib: Data, out_dir: Path, tag: str, **options) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, feeds):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    pre = _ort_preprocessed(fp32_path, out_dir)
    reader = Reader(onnx_feeds(pre, calib))
    out = _out(out_dir, fp32_path, tag, ".onnx")
    quantize_static(str(pre), str(out), reader, **options)
    return out


def ort_static(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """onnxruntime quantize_static, all defaults: QDQ, MinMax, per-tensor, int8/int8."""
    return _ort_static(fp32_path, calib, out_dir, "ort-static")


def ort_static_per_channel(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """onnxruntime quantize_static defaults with per_channel=True."""
    return _ort_static(fp32_path, calib, out_dir, "ort-static-pc", per_channel=True)


def ort_dynamic(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """onnxruntime quantize_dynamic, all defaults (int8 weights; calib unused)."""
    from onnxruntime.quantization import quantize_dynamic

    pre = _ort_preprocessed(fp32_path, out_dir)
    out = _out(out_dir, fp32_path, "ort-dynamic", ".onnx")
    quantize_dynamic(str(pre), str(out))
    return out


def _nncf(fp32_path: Path, calib: Data, out_dir: Path, tag: str, **options) -> Path:
    import nncf
    import onnx

    model = onnx.load(str(fp32_path))
    dataset = nncf.Dataset(onnx_feeds(fp32_path, calib))
    quantized = nncf.quantize(model, dataset, **options)
    out = _out(out_dir, fp32_path, tag, ".onnx")
    onnx.save(quantized, str(out))
    return out


def nncf_default(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """nncf.quantize with its defaults on the ONNX model."""
    return _nncf(fp32_path, calib, out_dir, "nncf")


def nncf_transformer(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """nncf.quantize with model_type=TRANSFORMER (its preset for transformer models)."""
    import nncf

    return _nncf(fp32_path, calib, out_dir, "nncf-transformer",
                 model_type=nncf.ModelType.TRANSFORMER)


def aeq_static(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """ai-edge-quantizer static_wi8_ai8 (MinMax), calibrated on `calib`."""
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(fp32_path), recipe.static_wi8_ai8())
    signature, feeds = tflite_feeds(fp32_path, calib)
    result = q.calibrate({signature: feeds})
    out = _out(out_dir, fp32_path, "aeq-static", ".tflite")
    q.quantize(result).export_model(str(out), overwrite=True)
    return out


def aeq_dynamic(fp32_path: Path, calib: Data, out_dir: Path) -> Path:
    """ai-edge-quantizer dynamic_wi8_afp32 (int8 weights, float activations)."""
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(fp32_path), recipe.dynamic_wi8_afp32())
    out = _out(out_dir, fp32_path, "aeq-dynamic", ".tflite")
    q.quantize().export_model(str(out), overwrite=True)
    return out


@dataclass(frozen=True)
class Peer:
    name: str
    function: Callable[[Path, Data, Path], Path]
    takes: str                  # "onnx" or "tflite"
    label: str                  # for the table
    imports: tuple[str, ...]    # imported before the clock starts
    transformer_only: bool = False


PEERS = {p.name: p for p in [
    Peer("ort-static", ort_static, "onnx",
         "onnxruntime quantize_static defaults (QDQ, MinMax, per-tensor)",
         ("onnxruntime.quantization",)),
    Peer("ort-static-per-channel", ort_static_per_channel, "onnx",
         "onnxruntime quantize_static per_channel=True", ("onnxruntime.quantization",)),
    Peer("ort-dynamic", ort_dynamic, "onnx", "onnxruntime quantize_dynamic defaults",
         ("onnxruntime.quantization",)),
    Peer("nncf", nncf_default, "onnx", "NNCF nncf.quantize defaults", ("nncf", "onnx")),
    Peer("nncf-transformer", nncf_transformer, "onnx",
         "NNCF nncf.quantize model_type=TRANSFORMER", ("nncf", "onnx"), transformer_only=True),
    Peer("aeq-static", aeq_static, "tflite",
         "ai-edge-quantizer static_wi8_ai8 (calibrated)", ("ai_edge_quantizer.quantizer",)),
    Peer("aeq-dynamic", aeq_dynamic, "tflite", "ai-edge-quantizer dynamic_wi8_afp32",
         ("ai_edge_quantizer.quantizer",)),
]}


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


# --------------------------------------------------------------------------- child process

def load_data(path: Path) -> Data:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`; for an empty message, where it was raised."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if lines:
        return f"{type(exc).__name__}: {lines[0]}"[:300]
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    where = frames[-1]
    parts = Path(where.filename).parts
    short = "/".join(parts[parts.index("site-packages") + 1:] if "site-packages" in parts
                     else parts[-2:])
    return f"{type(exc).__name__} in {short}:{where.lineno} ({where.name})"


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize", help="run one peer; writes {path, seconds} or {error}")
    q.add_argument("peer", choices=sorted(PEERS))
    q.add_argument("fp32", type=Path)
    q.add_argument("calib", type=Path, help=".npz keyed by model input name")
    q.add_argument("out_dir", type=Path)
    q.add_argument("--result", type=Path, required=True)
    o = sub.add_parser("outputs", help="run an artifact on data; writes out_0, out_1... "
                       "and integer_weight_share")
    o.add_argument("artifact", type=Path)
    o.add_argument("data", type=Path)
    o.add_argument("out", type=Path)
    t = sub.add_parser("latency", help="interleaved timing; writes {path: {p50_ms, runs}}")
    t.add_argument("data", type=Path)
    t.add_argument("artifacts", type=Path, nargs="+")
    t.add_argument("--rounds", type=int, default=10)
    t.add_argument("--slot-seconds", type=float, default=0.25)
    t.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "quantize":
        peer = PEERS[args.peer]
        try:
            import importlib

            calib = load_data(args.calib)
            for module in peer.imports:
                importlib.import_module(module)
            start = time.perf_counter()
            path = peer.function(args.fp32, calib, args.out_dir)
            result = {"path": str(path), "seconds": time.perf_counter() - start,
                      "note": "; ".join(NOTES)}
        except Exception as exc:  # every tool raises its own types: all mean "this peer failed"
            traceback.print_exc()
            result = {"error": "; ".join(NOTES + [first_line(exc)])}
        args.result.write_text(json.dumps(result))
        return 0
    if args.command == "outputs":
        ys = outputs(args.artifact, load_data(args.data))
        np.savez(args.out, integer_weight_share=integer_weight_share(args.artifact),
                 **{f"out_{k}": y for k, y in enumerate(ys)})
        return 0
    result = latency(args.artifacts, load_data(args.data), rounds=args.rounds,
                     slot_seconds=args.slot_seconds)
    args.result.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
