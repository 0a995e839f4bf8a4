"""The models the quantization table covers: their data, their inputs, and the fp32
artifacts made here when `edgecomp deploy` makes none.

The models and data makers come from the zoo package (`--zoo`, default examples.zoo); the
digits model is edgecomp's built-in demo on scikit-learn's digits.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant_children import child
from quant_peers import first_line


@dataclass(frozen=True)
class Model:
    key: str                    # --models name
    agreement: str              # "argmax", "threshold" (one probability) or "none"
    data: str | None            # `python -m <zoo>.data KIND`; None: scikit-learn digits
    spec: str | None = None     # edgecomp deploy MODEL: a factory, module:function
    file: str | None = None     # or module:function returning the model's file
    transformer: bool = False
    fallback: str | None = None  # fp32 artifacts when deploy makes none: "torch" or "onnx"


MODELS = {m.key: m for m in [
    Model("digits", "argmax", None),
    Model("efficientnet-lite0", "argmax", "photos", spec="{zoo}.models:efficientnet_lite0"),
    Model("minilm", "none", "sentences", spec="{zoo}.models:minilm", transformer=True,
          fallback="torch"),
    Model("silero-vad", "threshold", "speech", file="{zoo}.models:silero_vad_16k_onnx_path",
          fallback="onnx"),
]}


def model_arg(model: Model, zoo: str) -> str | None:
    """The MODEL argument of edgecomp deploy (None: the built-in demo)."""
    if model.file:
        module, _, function = model.file.format(zoo=zoo).partition(":")
        return str(getattr(importlib.import_module(module), function)())
    return model.spec.format(zoo=zoo) if model.spec else None


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def make_data(model: Model, out: Path, args) -> tuple[Path, Path, str]:
    """The calibration and evaluation files (args.calib_count, args.eval_count samples)
    and a line saying where they came from."""
    calib, evaluation = out / "calib.npz", out / "eval.npz"
    if model.data is None:
        from edgecomp.model.data import demo_digits

        for split, count, path in (("train", args.calib_count, calib),
                                   ("val", args.eval_count, evaluation)):
            data = demo_digits(split).take(count)
            np.savez(path, x=data.x, y=data.y)
        return calib, evaluation, (
            f"{model.key}: scikit-learn digits, calibration {args.calib_count} samples "
            f"of the train split, evaluation {args.eval_count} of the val split "
            "(edgecomp.model.data.demo_digits, seeded subset)")
    for split, count, path in (("calib", args.calib_count, calib),
                               ("eval", args.eval_count, evaluation)):
        cmd = [sys.executable, "-m", f"{args.zoo}.data", model.data, "--split", split,
               "--count", str(count), "-o", str(path)]
        rc, error = child(cmd, out / "logs" / f"data-{split}.log", args.timeout)
        if rc != 0:
            raise RuntimeError(f"{args.zoo}.data {model.data} --split {split}: {error}")
    shapes = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in load_npz(evaluation).items()
                       if k != "y")
    return calib, evaluation, (
        f"{model.key}: `python -m {args.zoo}.data {model.data} --split calib|eval`, "
        f"{args.calib_count} calibration and {args.eval_count} evaluation samples ({shapes})")


def input_names(fp32: dict) -> list[str] | None:
    """The model's input names, from its fp32 ONNX artifact (None without one)."""
    onnx_path = fp32.get("onnx")
    if not isinstance(onnx_path, Path):
        return None
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return [v.name for v in graph.input if v.name not in initializers]


def by_input(data: dict[str, np.ndarray], names: list[str] | None) -> dict:
    """The data file's arrays keyed by model input name: by name where they agree,
    `x` for a single-input model, else in file order (labels `y` dropped)."""
    arrays = {k: v for k, v in data.items() if k != "y"}
    if not names:
        return arrays
    if set(names) <= set(arrays):
        return {n: arrays[n] for n in names}
    if len(names) == 1 and "x" in arrays:
        return {names[0]: arrays["x"]}
    return dict(zip(names, arrays.values()))


def fallback_fp32(model: Model, out: Path, eval_raw: Path, missing: list[str], *,
                  zoo: str) -> tuple[dict[str, Path | str], str]:
    """fp32 artifacts of the `missing` formats made here (or why not), and the fp32 row's
    label: the model's own ONNX file, or torch.onnx.export / litert_torch.convert."""
    made: dict[str, Path | str] = {}
    own = out / "fp32"
    own.mkdir(exist_ok=True)
    if model.fallback == "onnx":  # the model is an ONNX file: the peers start from it
        made["onnx"] = Path(model_arg(model, zoo))
        made["tflite"] = "not built: the model ships as ONNX only"
        return made, "fp32 (the model's own ONNX file)" if "onnx" in missing else "fp32"
    if model.fallback != "torch":
        return {f: "edgecomp deploy made no fp32 artifact" for f in missing}, "fp32"
    import torch

    module_name, _, function = model.spec.format(zoo=zoo).partition(":")
    try:
        module = getattr(importlib.import_module(module_name), function)().eval()
    except Exception as exc:  # the zoo's code: whatever it raises is this row's failure
        return {f: first_line(exc) for f in missing}, "fp32 (torch export)"
    sample = {k: v[:1] for k, v in load_npz(eval_raw).items() if k != "y"}
    example = tuple(torch.from_numpy(v) for v in sample.values())
    if "onnx" in missing:
        path = own / f"{model.key}.fp32.onnx"
        try:
            program = torch.onnx.export(module, example, dynamo=True,
                                        input_names=list(sample), verbose=False)
            program.save(str(path))
            made["onnx"] = path
        except Exception as exc:  # the exporter raises many types; all mean "not built"
            made["onnx"] = f"torch.onnx.export: {first_line(exc)}"
    if "tflite" in missing:
        path = own / f"{model.key}.fp32.tflite"
        try:
            import litert_torch

            litert_torch.convert(module, example).export(str(path))
            made["tflite"] = path
        except Exception as exc:  # the converter raises many types; all mean "not built"
            made["tflite"] = f"litert_torch.convert: {first_line(exc)}"
    return made, "fp32 (torch.onnx.export / litert_torch.convert here)"
