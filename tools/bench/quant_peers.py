"""Other tools' int8 quantizers, and the child process that runs each benchmark step.

Used by tools/bench/quantization. Every peer has the same signature:

    peer(fp32_path, calib, out_dir) -> Path of the quantized artifact

`calib` maps each model input name to an array with the sample axis first; sample i is
`calib[name][i]`, reshaped to the model's input shape. The onnxruntime and NNCF peers take
an fp32 .onnx file, the ai-edge-quantizer peers an fp32 .tflite file. Each peer uses its
tool's defaults apart from what its name says.

Running and timing artifacts is quant_runners.py. The bench runs each step in a child
process (`quant_peers.py quantize|outputs|latency ...`) so that a peer that crashes or
hangs becomes one failed row, not a failed run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from quant_runners import (Data, integer_weight_share, latency, onnx_feeds,  # noqa: E402
                           outputs, tflite_feeds)


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


def missing_module(peer: Peer) -> str | None:
    """The first module the peer's tool needs that is not installed here, else None."""
    return next((name for name in peer.imports
                 if importlib.util.find_spec(name.partition(".")[0]) is None), None)


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
