"""Accuracy-aware int8: try quantization schemes in order of cost, measured in the runtime.

Static int8 is exported with the plan's scheme first. Each candidate is run on the
evaluation set in the target's own runtime (the same `run` the final verification uses)
and compared with the float model; the first candidate that meets the agreement target
is kept. Otherwise cheaper fixes come before dearer ones: other calibrations (MinMax,
percentile, entropy), then mixed precision, where the layers that add the most error stay
in float (ranked with onnxruntime's qdq_loss_debug tools). When no candidate meets the
target, the one that agrees best is kept and flagged. Every candidate tried is reported
with its agreement, size and build time.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgecomp.errors import DeviceError, ExportError
from edgecomp.quantize.target import AgreementTarget, SearchLog, Tried
from edgecomp.vocab import CalibrationMethod, Precision

if TYPE_CHECKING:
    from edgecomp.export import Int8Options
    from edgecomp.export.base import Artifact, ExportRequest
    from edgecomp.results.agreement import Verification

log = logging.getLogger(__name__)

CheckFn = Callable[["Artifact"], "Verification | None"]


def _options(request: ExportRequest) -> dict[str, Any]:
    return {"precision": request.precision.value, "per_channel": request.per_channel,
            "calibration_method": request.calibration_method.value,
            "float_layers": request.float_layers}


# Mixed-precision steps: how many of the most error-adding layers stay in float.
FLOAT_LAYER_STEPS = (1, 3, 6, 12)


def calibration_candidates(options: Int8Options, request: ExportRequest
                           ) -> list[dict[str, Any]]:
    """The cheap candidates: the calibrations the format offers, the plan's own first."""
    methods = [request.calibration_method] + [
        m for m in (CalibrationMethod.MINMAX, CalibrationMethod.PERCENTILE,
                    CalibrationMethod.ENTROPY)
        if m != request.calibration_method and m in options.calibrations]
    return [{"calibration_method": m} for m in methods]


def mixed_candidates(options: Int8Options, *, allow_dynamic: bool,
                     precisions: frozenset[Precision]) -> list[dict[str, Any]]:
    """Mixed precision, where the format can keep layers in float; then, for MatMul-heavy
    models where the format offers it (`precisions`), dynamic int8 (int8 weights,
    activations quantized at run time), which keeps activations exact but may run slower
    than fp32 (the result then says so)."""
    steps: list[dict[str, Any]] = []
    if options.float_layers:
        steps += [{"float_layers": k} for k in FLOAT_LAYER_STEPS]
    if allow_dynamic and Precision.DYNAMIC_INT8 in precisions:
        steps.append({"precision": Precision.DYNAMIC_INT8, "float_layers": 0})
    return steps


def search_int8(request: ExportRequest, exporter, check: CheckFn, target: AgreementTarget, *,
                progress: Callable[[str, int, int], None] | None = None,
                allow_dynamic: bool = False) -> tuple[Artifact, list[Tried]]:
    """Export static int8 candidates until one meets `target`; return it and all tried.

    The kept artifact ends at the usual artifact path with the search in its manifest;
    the others are removed. `progress` sees each candidate as a phase, and the search as
    one whose steps are the candidates planned so far (the time left is their pace).
    """
    fmt = exporter.format
    final_dir = request.out_dir
    work = final_dir / f".search-{request.model_name}-{fmt.value}"
    shutil.rmtree(work, ignore_errors=True)
    tried: list[Tried] = []
    built: dict[str, Artifact] = {}
    try:
        steps = [("calibration", c) for c in calibration_candidates(exporter.int8_options,
                                                                     request)]
        best: Tried | None = None
        index = 0
        while index < len(steps):
            if progress is not None:
                progress(f"int8 search ({fmt.value})", index, len(steps))
            phase, changes = steps[index]
            index += 1
            base = request if phase == "calibration" or best is None else \
                replace(request, per_channel=best.options["per_channel"],
                        calibration_method=CalibrationMethod(best.options["calibration_method"]))
            candidate = replace(base, **changes, out_dir=work / f"c{len(tried)}")
            result, artifact = _try(candidate, exporter, check, target, progress=progress)
            tried.append(result)
            if artifact is not None:
                built[result.name] = artifact
            if result.error is None and (best is None or result.score() > best.score()):
                best = result
            if result.met:
                break
            if artifact is not None and result.error is not None:
                # Built but not checked: the board failed. Later candidates could not be
                # judged either; keep this one, and measuring it reports the board's state.
                best = best or result
                break
            if index == len(steps) and phase == "calibration" and best is not None:
                steps += [("mixed", c) for c in mixed_candidates(
                    exporter.int8_options, allow_dynamic=allow_dynamic,
                    precisions=exporter.precisions)]
        if progress is not None:
            progress(f"int8 search ({fmt.value})", index, index)
        kept = next((t for t in tried if t.met), best)
        if kept is None:
            raise ExportError(f"no int8 candidate of {request.model_name} could be built for "
                              f"{fmt.value}: {tried[0].error if tried else 'none tried'}")
        return _keep(built[kept.name], final_dir, tried, kept, target), tried
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _try(request: ExportRequest, exporter, check: CheckFn, target: AgreementTarget, *,
         progress) -> tuple[Tried, Artifact | None]:
    options = _options(request)
    name = (f"{'per-channel' if request.per_channel else 'per-tensor'} "
            f"{request.calibration_method.value}"
            + (f", {request.float_layers} layers float" if request.float_layers else ""))
    if request.precision == Precision.DYNAMIC_INT8:
        name = "dynamic int8 (int8 weights, activations quantized at run time)"
    if progress is None:
        return _export_and_check(request, name, options, exporter, check, target)
    progress(f"int8 candidate: {name}", 0, 1)
    try:
        return _export_and_check(request, name, options, exporter, check, target)
    finally:
        progress(f"int8 candidate: {name}", 1, 1)


def _export_and_check(request: ExportRequest, name: str, options: dict, exporter,
                      check: CheckFn, target: AgreementTarget) -> tuple[Tried, Artifact | None]:
    start = time.perf_counter()
    try:
        artifact = exporter.export(request)
    except ExportError as exc:
        return Tried(name=name, options=options, error=str(exc)), None
    build_s = round(time.perf_counter() - start, 2)
    try:
        verification = check(artifact)
    except DeviceError as exc:
        return Tried(name=name, options=options, size_bytes=artifact.size_bytes,
                     build_s=round(time.perf_counter() - start, 2),
                     error=f"not checked: {exc}"), artifact
    agreement = verification.agreement if verification is not None else None
    result = Tried(name=name, options=options,
                   cosine=agreement.cosine if agreement else None,
                   cosine_min=agreement.cosine_min if agreement else None,
                   decision=agreement.decision if agreement else None,
                   accuracy_delta=verification.accuracy_delta if verification else None,
                   size_bytes=artifact.size_bytes, build_s=build_s,
                   met=target.met(verification),
                   float_layers=list(artifact.manifest.float_layers or ()))
    log.info("int8 candidate %s: cosine %s, same calls %s %%, %s", name, result.cosine,
             result.decision, "meets the target" if result.met else "below the target")
    return result, artifact


def _keep(artifact: Artifact, final_dir: Path, tried: list[Tried], kept: Tried,
          target: AgreementTarget) -> Artifact:
    """Move the kept candidate to the artifact's usual path, with the search in its manifest."""
    log_ = SearchLog(target=target, kept=kept.name, met=kept.met, tried=tuple(tried))
    return artifact.moved_to(final_dir / artifact.path.name,
                             replace(artifact.manifest, search=log_))
