"""measure_on the board: verify each artifact in the board's runtime, time it, and turn the
agent's report into a record.

One boundary: any failure on the board or its link while verifying or measuring an artifact
becomes that artifact's failed record, and the finished records of the others are kept.
"""

from __future__ import annotations

import logging
import platform
import sys
from typing import Any, Callable

import numpy as np

import edgecomp
from edgecomp.agent.protocol import MeasureReport
from edgecomp.pipeline.build import Prepared
from edgecomp.errors import DeviceError, plain_text
from edgecomp.export.base import Artifact
from edgecomp.remote.base import MeasureOptions, Transport, transport_errors
from edgecomp.results.execution import execution_flags, summarize_profile
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import measured
from edgecomp.model.signature import stacked
from edgecomp.model.reference import model_outputs, onnx_outputs
from edgecomp.results.agreement import Verification, compare_outputs, top1

ProgressFn = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


def reference_outputs(prepared: Prepared) -> list[np.ndarray] | None:
    """The float model's outputs on the evaluation set, one array per output: the PyTorch
    module, or for an ONNX source the ONNX file itself run by onnxruntime here."""
    source, eval_set = prepared.source, prepared.eval
    if eval_set is None:
        return None
    if source.module is not None:
        return model_outputs(source.module, eval_set, source.inputs)
    if source.onnx_path is not None:
        return onnx_outputs(source.onnx_path, eval_set, source.inputs)
    return None


def verify(artifact: Artifact, prepared: Prepared, reference: list[np.ndarray] | None,
           transport: Transport) -> Verification | None:
    """Run the artifact on the evaluation set in its runtime, where it will be measured."""
    if prepared.eval is None:
        return None
    outputs = transport.run_batch(artifact.path, stacked(prepared.eval, prepared.source.inputs))
    if reference is not None:
        try:
            return compare_outputs(reference, outputs, prepared.eval)
        except ValueError as exc:
            raise DeviceError(f"{artifact.path.name} cannot be compared with the float "
                              f"model: {exc}.") from exc
    if prepared.eval.y is None:
        return None
    return Verification(accuracy=round(top1(outputs[0], prepared.eval.y), 3),
                        float_accuracy=None, accuracy_delta=None, agreement=None,
                        samples=len(outputs[0]))


def measured_inputs(prepared: Prepared) -> dict[str, np.ndarray] | None:
    """The inputs the agent times with: the first evaluation (else calibration) sample,
    else the sample made for the shapes --input-shape chose (else the agent makes one)."""
    data = prepared.eval if prepared.eval is not None else prepared.calib
    if data is None:
        data = prepared.source.timing
    if data is None:
        return None
    return {key: value[:1] for key, value in stacked(data, prepared.source.inputs).items()}


def host_facts() -> dict[str, Any]:
    """The machine and software that built the artifacts, stored with every record."""
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "edgecomp": edgecomp.__version__}


def measure_and_record(artifact: Artifact, prepared: Prepared, transport: Transport,
                       options: MeasureOptions, *, reference: list[np.ndarray] | None,
                       progress: ProgressFn | None = None,
                       verified: dict[str, Verification] | None = None) -> ResultRecord:
    """Verify and measure one artifact; a failure becomes a record with `error` set.

    `verified` holds verifications already made (by artifact sha256), e.g. while the
    int8 candidates were compared; they are not run again.
    """
    try:
        sha = artifact.manifest.get("sha256")
        check = verified[sha] if verified and sha in verified else \
            verify(artifact, prepared, reference, transport)
        report = transport.measure(artifact.path, options, measured_inputs(prepared))
    except DeviceError as exc:
        return failed_record(artifact, prepared, transport, str(exc))
    power = report.power
    runtime = f"{report.runtime} {report.runtime_version or ''}".strip()
    device = device_facts(report, transport)
    return ResultRecord(
        flags=execution_flags(device, prepared.plan, fmt=artifact.format, runtime=runtime),
        profile=summarize_profile(report.profile),
        **_identity(artifact, prepared, transport),
        accuracy=check.accuracy if check else None,
        float_accuracy=check.float_accuracy if check else None,
        accuracy_delta=check.accuracy_delta if check else None,
        agreement=check.agreement if check else None,
        latency_ms=report.latency_ms, load_ms=report.load_ms,
        first_inference_ms=report.first_inference_ms, peak_rss_mb=report.peak_rss_mb,
        rss_growth_mb=report.rss_growth_mb,
        runtime=runtime, threads=report.threads, device=device,
        samples_ms=list(report.samples_ms),
        stability=measured(report.samples_ms, report.to_dict()),
        energy_mj=power.energy_mj, energy_reason=power.reason,
        emulated=report.device_before.emulated is not None)


def device_facts(report: MeasureReport,
                 transport: Transport) -> dict[str, Any]:
    """The board's state around the measurement and what ran it, as the agent reported."""
    data = report.to_dict()
    facts = {key: data[key] for key in ("device_before", "device_after", "throttled_during",
                                        "throttle_c", "python", "agent_version", "lock_wait_s",
                                        "power", "warmup", "delegate", "execution_providers",
                                        "threads_requested", "protocol_version",
                                        "fallback_ops", "delegate_requested", "fallback")}
    target = data["target"] or {"name": transport.target}
    facts.update({key: value for key, value in target.items() if value is not None})
    facts["arch"] = report.device_before.machine
    facts["emulation"] = report.device_before.emulated
    return facts


def measure_all(artifacts: list[Artifact], prepared: Prepared, transport: Transport,
                options_for: Callable[[Artifact], MeasureOptions], *,
                reference: list[np.ndarray] | None,
                progress: ProgressFn | None = None,
                verified: dict[str, Verification] | None = None) -> list[ResultRecord]:
    """Verify and measure every artifact; any failure on the board is that artifact's
    failed record, and the finished records of the others are kept."""
    link_errors = transport_errors()
    records = []
    for index, artifact in enumerate(artifacts):
        if progress is not None:
            progress("measuring artifacts", index, len(artifacts))
        try:
            records.append(measure_and_record(artifact, prepared, transport,
                                              options_for(artifact),
                                              reference=reference, verified=verified))
        except link_errors as exc:
            records.append(failed_record(artifact, prepared, transport,
                                         f"the connection to {transport.target} failed "
                                         f"({type(exc).__name__}: {exc})"))
    if progress is not None:
        progress("measuring artifacts", len(artifacts), len(artifacts))
    return records


def failed_record(artifact: Artifact, prepared: Prepared, transport: Transport,
                  error: str) -> ResultRecord:
    """A record for an artifact that could not be measured: no numbers, the reason."""
    return ResultRecord(
        **_identity(artifact, prepared, transport), accuracy=None, float_accuracy=None,
        accuracy_delta=None, agreement=None, latency_ms=None, load_ms=None,
        first_inference_ms=None, peak_rss_mb=None, rss_growth_mb=None, runtime=None,
        threads=None, device={}, error=plain_text(error))


def _identity(artifact: Artifact, prepared: Prepared, transport: Transport) -> dict[str, Any]:
    """What every record of an artifact says about what was measured where."""
    manifest = artifact.manifest
    calibration = manifest.get("calibration") or {}
    return dict(model=manifest["model"], technique=manifest["technique"],
                target=transport.target, format=artifact.format,
                precision=artifact.precision.value, size_bytes=artifact.size_bytes,
                transport=transport.name, artifact_sha256=manifest["sha256"],
                artifact_name=artifact.path.name, source_sha256=manifest["source_sha256"],
                calib_sha256=calibration.get("sha256"), calib_source=calibration.get("source"),
                manifest=manifest, plan=prepared.plan, host=host_facts())
