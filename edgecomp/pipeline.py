"""deploy = plan → compress → export → push → measure → record.

Each stage is a function a library user can call alone; `deploy` strings them
together. Bad input is refused before anything is written: no artifact, no row.
"""

from __future__ import annotations

import logging
import platform
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

import edgecomp
from edgecomp.data import DEFAULT_CALIB_SIZE, Dataset, load_data, random_calibration
from edgecomp.errors import DeviceError, InputError
from edgecomp.export.base import (Artifact, CalibrationMethod, ExportRequest, Precision,
                                  get_exporter)
from edgecomp.remote.base import MeasureOptions, Transport
from edgecomp.results.record import Latency, ResultRecord
from edgecomp.sources import ModelSource, check_data_shape
from edgecomp.verify import Verification, compare_outputs, float_outputs, top1

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExportPlan:
    """Which artifacts to build and how: the formats, precisions and quantization options."""

    formats: tuple[str, ...] = ("tflite", "onnx")
    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.INT8)
    io_dtype: str = "float32"
    per_channel: bool = True
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    reduce_range: bool = False


@dataclass(frozen=True)
class DataPlan:
    """Where calibration and evaluation data come from."""

    calib: str | None = None  # a path, "demo", or "random"; None is an error for int8
    eval: str | None = None
    calib_size: int = DEFAULT_CALIB_SIZE
    eval_size: int | None = None
    seed: int = 0
    image_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """A model with its data, checked against each other, ready to export."""

    source: ModelSource
    calib: Dataset | None
    eval: Dataset | None
    technique: str = "none"
    plan: dict[str, Any] | None = None


def prepare(source: ModelSource, data: DataPlan, *, needs_calib: bool) -> Prepared:
    """Load calibration and evaluation data and check that they fit the model."""
    sample_shape = tuple(source.input_shape[1:])
    calib = None
    if data.calib == "random":
        calib = random_calibration(sample_shape, data.calib_size, seed=data.seed)
    elif data.calib is not None:
        calib = load_data(data.calib, **data.image_options).take(data.calib_size, seed=data.seed)
    elif needs_calib:
        raise InputError("int8 export needs calibration data: pass --calib with an .npz file "
                         "or image folder of real inputs (or --calib random to accept poor "
                         "int8 ranges).")
    eval_set = None
    if data.eval is not None:
        eval_set = load_data(data.eval, **data.image_options)
        if data.eval_size is not None:
            eval_set = eval_set.take(data.eval_size, seed=data.seed)
    for what, dataset in (("calibration", calib), ("evaluation", eval_set)):
        if dataset is not None:
            check_data_shape(source, dataset.sample_shape, what=what)
    return Prepared(source=source, calib=calib, eval=eval_set)


def export_all(prepared: Prepared, plan: ExportPlan, out_dir: Path, *,
               progress: ProgressFn | None = None) -> list[Artifact]:
    """Export every (format, precision) pair the plan asks for; refuse impossible pairs first."""
    source = prepared.source
    pairs = [(fmt, precision) for fmt in plan.formats for precision in plan.precisions]
    if source.module is None and any(fmt != "onnx" for fmt, _ in pairs):
        raise InputError(f"{source.spec} is an ONNX file: it can only be exported to ONNX "
                         "(use --format onnx), or give the PyTorch model for LiteRT.")
    if any(p == Precision.FP16 for _, p in pairs) and "onnx" in plan.formats:
        pairs = [(f, p) for f, p in pairs if not (f == "onnx" and p == Precision.FP16)]
        log.warning("fp16 is exported for LiteRT only (onnxruntime's CPU provider has no fast "
                    "fp16 path)")
    exporters = {fmt: get_exporter(fmt) for fmt, _ in pairs}
    artifacts = []
    for technique, module in exported_modules(prepared):
        for fmt, precision in pairs:
            request = ExportRequest(
                module=module, example_input=source.example_input, model_name=source.name,
                source_sha256=source.sha256, precision=precision, out_dir=out_dir,
                calib=prepared.calib if precision == Precision.INT8 else None,
                io_dtype=plan.io_dtype, per_channel=plan.per_channel,
                calibration_method=plan.calibration_method, reduce_range=plan.reduce_range,
                onnx_path=source.onnx_path, technique=technique, progress=progress)
            log.info("exporting %s %s %s", technique, fmt, precision.value)
            artifacts.append(exporters[fmt].export(request))
    return artifacts


def exported_modules(prepared: Prepared) -> list[tuple[str, Any]]:
    """(technique, module) pairs to export: one per exit for an early-exit model.

    An early-exit network becomes one artifact per exit (`<recipe>.exit1`, ...), so that
    an application runs exit 1 and continues with the next artifact only while the top
    probability stays below its threshold; each is measured on the board like any other.
    """
    module = prepared.source.module
    exits = getattr(module, "exit_models", None)
    if module is None or exits is None:
        return [(prepared.technique, module)]
    return [(f"{prepared.technique}.exit{k}", exit_model)
            for k, exit_model in enumerate(exits(), start=1)]


def reference_outputs(prepared: Prepared) -> np.ndarray | None:
    """The float model's outputs on the evaluation set (ONNX sources: the fp32 ONNX model)."""
    if prepared.eval is None or prepared.source.module is None:
        return None
    return float_outputs(prepared.source.module, prepared.eval.x)


def verify(artifact: Artifact, prepared: Prepared, reference: np.ndarray | None,
           transport: Transport) -> Verification | None:
    """Run the artifact on the evaluation set in its runtime, where it will be measured."""
    if prepared.eval is None:
        return None
    outputs = transport.run_batch(artifact.path, prepared.eval.x)
    if reference is not None:
        return compare_outputs(reference, outputs, prepared.eval)
    if prepared.eval.y is None:
        return None
    return Verification(accuracy=round(top1(outputs, prepared.eval.y), 3), float_accuracy=None,
                        accuracy_delta=None, agreement=None, samples=len(outputs))


def host_facts() -> dict[str, Any]:
    """The machine and software that built the artifacts, stored with every record."""
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "edgecomp": edgecomp.__version__}


def measure_and_record(artifact: Artifact, prepared: Prepared, transport: Transport,
                       options: MeasureOptions, *, reference: np.ndarray | None,
                       progress: ProgressFn | None = None) -> ResultRecord:
    """Verify and measure one artifact; a failure becomes a record with `error` set."""
    manifest = artifact.manifest
    base = dict(model=manifest["model"], technique=manifest["technique"],
                target=transport.target, format=artifact.format,
                precision=artifact.precision.value, size_bytes=artifact.size_bytes,
                transport=transport.name, artifact_sha256=manifest["sha256"],
                artifact_name=artifact.path.name, source_sha256=manifest["source_sha256"],
                calib_sha256=(manifest["calibration"] or {}).get("sha256"),
                calib_source=(manifest["calibration"] or {}).get("source"),
                manifest=manifest, plan=prepared.plan, host=host_facts())
    try:
        check = verify(artifact, prepared, reference, transport)
        report = transport.measure(artifact.path, options)
    except DeviceError as exc:
        return ResultRecord(**base, accuracy=None, float_accuracy=None, accuracy_delta=None,
                            agreement=None, latency_ms=None, load_ms=None,
                            first_inference_ms=None, peak_rss_mb=None, rss_growth_mb=None,
                            runtime=None, threads=None, device={}, error=str(exc))
    power = report.get("power") or {}
    return ResultRecord(
        **base,
        accuracy=check.accuracy if check else None,
        float_accuracy=check.float_accuracy if check else None,
        accuracy_delta=check.accuracy_delta if check else None,
        agreement=check.agreement if check else None,
        latency_ms=Latency(**report["latency_ms"]), load_ms=report["load_ms"],
        first_inference_ms=report["first_inference_ms"], peak_rss_mb=report["peak_rss_mb"],
        rss_growth_mb=report.get("rss_growth_mb"),
        runtime=f"{report['runtime']} {report.get('runtime_version', '')}".strip(),
        threads=report.get("threads"), device=device_facts(report, transport),
        samples_ms=list(report.get("samples_ms", [])),
        energy_mj=power.get("energy_mj"),
        energy_reason=power.get("reason") if power else "no power probe configured")


def device_facts(report: dict[str, Any], transport: Transport) -> dict[str, Any]:
    """The board's state around the measurement, as the agent reported it."""
    facts = {key: report.get(key) for key in ("device_before", "device_after",
                                             "throttled_during", "python", "agent_version",
                                             "lock_wait_s", "power", "warmup")}
    facts.update(report.get("target") or {"name": transport.target})
    return facts


def compress(prepared: Prepared, recipe_spec: Any, *, train: Dataset | None,
             progress: ProgressFn | None = None, out_dir: Path | None = None,
             loss_fn: Callable | None = None,
             train_fn: Callable | None = None) -> tuple[Prepared, list]:
    """Run a recipe (a file or name, or a parsed `Recipe`) on the model.

    The result is exported under the recipe's name.
    """
    from edgecomp.compress.base import DataContext
    from edgecomp.compress.recipe import Recipe, load_recipe, run_recipe
    from edgecomp.hashing import state_dict_sha256

    source = prepared.source
    if source.module is None:
        raise InputError(f"{source.spec} is an ONNX file; compression passes work on PyTorch "
                         "models (give the model as package.module:function or .pt2).")
    recipe = recipe_spec if isinstance(recipe_spec, Recipe) else load_recipe(recipe_spec)
    if train is not None:
        check_data_shape(source, train.sample_shape, what="training")
    context = DataContext(example_input=source.example_input, train=train, val=prepared.eval,
                          calib=prepared.calib, teacher=source.module, progress=progress,
                          out_dir=out_dir, stem=f"{source.name}.{recipe.name}",
                          loss_fn=loss_fn, train_fn=train_fn)
    model, reports = run_recipe(recipe, source.module, context)
    model.eval()
    compressed = replace(source, module=model, sha256=state_dict_sha256(model.state_dict()))
    plan = dict(prepared.plan or {})
    plan["recipe"] = {"name": recipe.name, "source": recipe.source, "text": recipe.text,
                      "export": recipe.export,
                      "reports": [{"name": r.name, "metrics": r.metrics, "notes": r.notes,
                                   "files": r.files} for r in reports]}
    return replace(prepared, source=compressed, technique=recipe.name, plan=plan), reports
