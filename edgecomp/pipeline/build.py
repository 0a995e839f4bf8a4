"""From a model and data to artifacts: prepare the data, compress, export.

The stages of `edgecomp.pipeline.deploy.deploy` that run on the host before anything is
measured; `edgecomp export` and `edgecomp compress` call them directly.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgecomp.model.data import Dataset, load_data, random_calibration
from edgecomp.errors import ExportError, InputError
from edgecomp.export import get_exporter, unsupported_reason
from edgecomp.export.base import Artifact, CalibrationMethod, ExportRequest, Precision
from edgecomp.vocab import ActivationDtype, Format, IoDtype
from edgecomp.hardware.plan import PlanRecord
from edgecomp.model.source import ModelSource, check_data
from edgecomp.pipeline.request import DataSpec
from edgecomp.results.record import RecipeRun

if TYPE_CHECKING:
    from edgecomp.export.cache import ArtifactCache

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FormatScheme:
    """The int8 scheme a format's own plan sets for its artifacts (a deploy that builds
    several formats plans each); `io_dtype` None where the user chose it."""

    per_channel: bool
    reduce_range: bool
    activation_symmetric: bool
    activation_dtype: ActivationDtype
    io_dtype: IoDtype | None = None

    def options(self) -> dict[str, Any]:
        """What it sets, as `ExportSettings` fields (`io_dtype` only where the plan chose)."""
        return {key: value for key, value in dataclasses.asdict(self).items()
                if value is not None}


@dataclass(frozen=True)
class ExportSettings:
    """Which artifacts to build and how: the formats, precisions and quantization options."""

    formats: tuple[Format, ...] = (Format.TFLITE, Format.ONNX)
    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.INT8)
    io_dtype: IoDtype = IoDtype.FLOAT32
    per_channel: bool = True
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    reduce_range: bool = False
    activation_symmetric: bool = False
    activation_dtype: ActivationDtype = ActivationDtype.INT8  # ONNX static int8 activations
    # The schemes the other formats' own plans set, read through `for_format`.
    by_format: tuple[tuple[Format, FormatScheme], ...] = ()

    def for_format(self, fmt: Format | str) -> ExportSettings:
        """The options `fmt`'s artifacts are built with."""
        scheme = dict(self.by_format).get(fmt)
        return replace(self, by_format=(), **(scheme.options() if scheme is not None else {}))


@dataclass(frozen=True)
class Prepared:
    """A model with its data, checked against each other, ready to export."""

    source: ModelSource
    calib: Dataset | None
    eval: Dataset | None
    technique: str = "none"
    plan: PlanRecord | None = None  # the board's plan, as its records carry it
    recipe: RecipeRun | None = None  # the recipe that compressed `source`, if one did


@dataclass(frozen=True)
class DataSets:
    """A request's data, read once: the calibration set (None for none or "random") and
    the evaluation set, each cut to its size, not yet checked against the model."""

    calib: Dataset | None = None
    eval: Dataset | None = None


def read_data(data: DataSpec) -> DataSets:
    """Read the calibration and evaluation data a request names (files, image folders, the
    digits), once: the model's loader and `prepare` share what was read."""
    calib = None
    if data.calib not in (None, "random"):
        calib = load_data(data.calib, **data.image_options).take(data.calib_size, seed=data.seed)
    eval_set = None
    if data.eval is not None:
        eval_set = load_data(data.eval, **data.image_options)
        if data.eval_size is not None:
            eval_set = eval_set.take(data.eval_size, seed=data.seed)
    return DataSets(calib=calib, eval=eval_set)


def prepare(source: ModelSource, data: DataSpec, *, needs_calib: bool,
            sets: DataSets | None = None) -> Prepared:
    """The model with its calibration and evaluation data, checked to fit it (`sets`: the
    data read already, else read here)."""
    sets = sets if sets is not None else read_data(data)
    calib, eval_set = sets.calib, sets.eval
    if data.calib == "random":
        calib = random_calibration(source.inputs, data.calib_size, seed=data.seed)
    elif calib is None and needs_calib:
        raise InputError("int8 export needs calibration data: pass --calib with an .npz file "
                         "or image folder of real inputs (or --calib random to accept poor "
                         "int8 ranges).")
    if calib is not None:
        calib = check_data(source, calib, what="calibration")
    if eval_set is not None:
        eval_set = check_data(source, eval_set, what="evaluation")
    return Prepared(source=source, calib=calib, eval=eval_set)


@dataclass(frozen=True)
class Search:
    """Accuracy-aware int8: each candidate is checked by `check` (run in the target's
    runtime against the float model) until one meets `target`."""

    check: Callable[[Artifact], Any]
    target: Any  # edgecomp.quantize.target.AgreementTarget
    # Dynamic int8 as the last candidate: only for MatMul-heavy models, because it runs
    # convolutions slower than fp32 on CPUs (FIELD.md; ConvInteger measured 12x slower).
    allow_dynamic: bool = False


def export_all(prepared: Prepared, plan: ExportSettings, out_dir: Path, *,
               progress: ProgressFn | None = None, search: Search | None = None,
               cache: ArtifactCache | None = None) -> list[Artifact]:
    """Export every (format, precision) pair the plan asks for; refuse impossible pairs first.

    With `search`, static int8 is chosen among candidates by measured agreement. When
    one of several artifacts cannot be built (e.g. quantization would change nothing),
    the others go on and the reason is logged. With `cache`, an artifact exported before
    with the same key is copied from it instead (one line says so), and each new one is
    kept there.
    """
    from edgecomp.export.cache import announce, model_identity

    source = prepared.source
    has_module = source.module is not None
    for fmt in plan.formats:
        reason = unsupported_reason(fmt, Precision.FP32, has_module=has_module)
        if reason:
            raise InputError(f"{source.spec}: {reason}")
    pairs = []
    for fmt in plan.formats:
        for precision in plan.precisions:
            reason = unsupported_reason(fmt, precision, has_module=has_module)
            if reason is None:
                pairs.append((fmt, precision))
            elif len(plan.precisions) > 1:
                log.warning("%s", reason)  # the other precisions of this format go on
            else:
                raise InputError(reason)
    exporters = {fmt: get_exporter(fmt) for fmt, _ in pairs}
    artifacts, reused = [], []
    for technique, module in exported_modules(prepared):
        model = model_identity(source, module) if cache is not None else {}
        for fmt, precision in pairs:
            options = plan.for_format(fmt)
            request = ExportRequest(
                module=module, inputs=source.inputs, model_name=source.name,
                source_sha256=source.sha256, model_sha256=source.given_sha256,
                precision=precision, out_dir=out_dir,
                calib=prepared.calib if precision == Precision.INT8 else None,
                io_dtype=options.io_dtype, per_channel=options.per_channel,
                calibration_method=options.calibration_method,
                reduce_range=options.reduce_range,
                activation_symmetric=options.activation_symmetric,
                activation_dtype=options.activation_dtype, onnx_path=source.onnx_path,
                technique=technique, progress=progress)
            searched = search is not None and precision == Precision.INT8
            key = None
            if cache is not None:
                key = cache.key(request, fmt, model=model,
                                search=_search_identity(search, prepared) if searched else None)
                hit = cache.load(key, out_dir)
                if hit is not None:
                    reused.append(hit)
                    artifacts.append(hit.artifact)
                    continue
            log.info("exporting %s %s %s", technique, fmt, precision.value)
            phase = f"exporting {fmt} {precision.value}" + (
                f" ({technique})" if technique != "none" else "")
            if progress is not None:  # a phase of its own: a large model takes minutes
                progress(phase, 0, 1)
            try:
                if searched:
                    from edgecomp.quantize.search import search_int8

                    artifact, _tried = search_int8(request, exporters[fmt], search.check,
                                                   search.target, progress=progress,
                                                   allow_dynamic=search.allow_dynamic)
                else:
                    artifact = exporters[fmt].export(request)
            except ExportError as exc:
                if len(pairs) == 1 or precision == Precision.FP32:
                    raise
                log.warning("%s", exc)  # the other artifacts go on
                continue
            if progress is not None:
                progress(phase, 1, 1)
            artifacts.append(artifact)
            if key is not None and _settled(artifact):
                cache.store(key, artifact)
    if reused:
        announce(reused)
    return artifacts


def _search_identity(search: Search, prepared: Prepared) -> dict[str, Any]:
    """What decides the int8 candidate a search keeps, apart from the board judging it."""
    return {"target": search.target.to_json(), "allow_dynamic": search.allow_dynamic,
            "eval": {"sha256": prepared.eval.sha256, "samples": len(prepared.eval)}
            if prepared.eval is not None else None}


def _settled(artifact: Artifact) -> bool:
    """False for an artifact a search kept without judging every candidate (the board
    failed mid-search): another run should search again rather than reuse it."""
    search = artifact.manifest.search
    return search is None or not any(t.error and t.size_bytes is not None
                                     for t in search.tried)


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
