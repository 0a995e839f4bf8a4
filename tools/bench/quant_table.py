"""The quantization table: a row per artifact, its scores against fp32, and the markdown.

Used by tools/bench/quantization, which fills the rows (see its docstring for the method).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks_md import cpu_model

SECTION = "## Quantization on real models"
DASH = "—"


@dataclass
class Row:
    model: str
    tool: str
    format: str
    path: Path | None = None
    seconds: float | None = None
    error: str | None = None
    note: str = ""
    reference: bool = False     # the fp32 artifact the others are compared with
    metrics: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"model": self.model, "tool": self.tool, "format": self.format,
                "path": str(self.path) if self.path else None, "seconds": self.seconds,
                "error": self.error, "note": self.note, "reference": self.reference,
                **self.metrics}


def compare(ys: list[np.ndarray], refs: list[np.ndarray], agreement: str) -> dict:
    """Agreement of the first output's decisions and per-sample cosine over all outputs."""
    count = len(refs[0])
    a = np.concatenate([y.reshape(count, -1) for y in ys], axis=1).astype(np.float64)
    b = np.concatenate([r.reshape(count, -1) for r in refs], axis=1).astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                      1e-30)
    facts = {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
             "samples": int(count)}
    first, ref = ys[0].reshape(count, -1), refs[0].reshape(count, -1)
    if agreement == "argmax":
        facts["agreement"] = float((first.argmax(1) == ref.argmax(1)).mean())
    elif agreement == "threshold":
        facts["agreement"] = float(((first[:, 0] > 0.5) == (ref[:, 0] > 0.5)).mean())
    return facts


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("onnxruntime", "nncf", "ai-edge-quantizer", "ai-edge-litert", "litert-torch",
                 "torch"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def markdown(rows: list[Row], data_notes: list[str], args, started: datetime.datetime) -> str:
    machine = f"{cpu_model()}, {os.cpu_count()} cores"
    paragraph = (
        f"Produced by `tools/bench/quantization` on {started:%Y-%m-%d} on {machine} "
        "(a shared machine: other work may have run at the same time). "
        + ("A smoke run (`--smoke`): the digits model, few samples, one short timing round; "
           "its numbers are not the benchmark's. " if args.smoke else "") +
        "For each model, "
        "`edgecomp deploy MODEL --calib C --eval E --format onnx --format tflite` makes the "
        "fp32 and its default int8 artifacts; every other tool starts from edgecomp's fp32 "
        ".onnx (onnxruntime, NNCF) or fp32 .tflite (ai-edge-quantizer) with its defaults "
        "unless the row says otherwise, and calibrates on the same samples (where edgecomp "
        "makes no fp32 artifact, the fp32 row names the one made here instead; the tools' "
        "own calibration and conversion use their default thread counts). Every artifact "
        "then runs on the same evaluation samples, one at a time with 1 thread, in "
        "onnxruntime (CPU execution provider) or LiteRT (ai_edge_litert Interpreter). "
        "Agreement: share of evaluation samples whose top-1 class (argmax of the first "
        "output; for a one-probability output, the decision at 0.5) equals the fp32 "
        "artifact's of the same format. Cosine: per sample, between the artifact's outputs "
        "and that fp32 artifact's (all outputs flattened); mean and minimum over samples. "
        "Size: the artifact file. Int weights: share of the "
        "weight bytes (constants of 16+ values, ONNX subgraphs included) stored as integers. "
        "p50 ratio: the artifact's median latency over the fp32 "
        "artifact's of the same runtime, both measured in this run: all artifacts of a model "
        "are loaded in one process and warmed up, then timed in "
        f"{args.rounds} interleaved rounds (each artifact in turn, the order rotating each "
        f"round, runs for {args.slot_seconds} s per round; each inference timed with "
        "time.perf_counter around setting the input and running), and the ratio is of the "
        "medians over all timed runs (below 1 is faster). Time: wall seconds to produce the "
        "artifact (the tool's call, its library already imported; for edgecomp the whole "
        "deploy command, including its int8 candidate search). "
        + ("edgecomp deploy gets the evaluation set as --eval, and its int8 search picks "
           "among its candidates by agreement on it: its int8 rows are selected on the data "
           "they are scored on here. "
           if args.edgecomp_eval == "eval" else
           "edgecomp deploy gets the calibration set as --eval (its int8 search selects on "
           "it), so the evaluation set stays held out from every tool. ") +
        f"Versions: {versions()}.")
    lines = [SECTION, "", paragraph, ""]
    lines += [f"- {note}" for note in data_notes]
    lines += [
        "",
        "| model | tool / config | format | top-1 agreement | cosine mean | cosine min | "
        "size (MiB) | int weights | p50 ms | p50 ratio | time (s) | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def num(value, fmt):
        return DASH if value is None else format(value, fmt)

    for r in rows:
        m = r.metrics
        note = r.note
        if r.error:
            note = r.error if r.error.startswith(("not built", "not run")) else \
                f"failed: {r.error}"
        if m.get("latency_error"):
            note = (note + "; " if note else "") + f"timing failed: {m['latency_error']}"
        agreement = m.get("agreement")
        size = m.get("size_mib")
        share = m.get("integer_weight_share")
        if share == 0 and not r.reference and not r.error:
            note = (note + "; " if note else "") + "no integer weights: nothing was quantized"
        lines.append(
            f"| {r.model} | {r.tool} | {r.format} | "
            f"{DASH if agreement is None else f'{100 * agreement:.1f}%'} | "
            f"{num(m.get('cosine_mean'), '.4f')} | {num(m.get('cosine_min'), '.4f')} | "
            f"{DASH if size is None else format(size, '.3f' if size < 1 else '.2f')} | "
            f"{DASH if share is None else f'{100 * share:.0f}%'} | "
            f"{num(m.get('p50_ms'), '.3f')} | {num(m.get('p50_ratio'), '.2f')} | "
            f"{num(r.seconds, '.2f' if (r.seconds or 0) < 10 else '.1f')} | "
            f"{note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
