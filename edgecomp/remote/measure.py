"""measure_on the board: verify each artifact in the board's runtime, time it, and turn the
agent's report into a record.

One boundary: any failure on the board or its link while verifying or measuring an artifact
becomes that artifact's failed record, and the finished records of the others are kept.
"""

from __future__ import annotations

import platform
import sys
from typing import Any, Callable

import numpy as np

import edgecomp
from edgecomp.agent.protocol import MeasureReport
from edgecomp.build import Prepared
from edgecomp.errors import DeviceError
from edgecomp.export.base import Artifact
from edgecomp.remote.base import MeasureOptions, Transport
from edgecomp.results.record import ResultRecord
from edgecomp.verify import Verification, compare_outputs, float_outputs, top1

ProgressFn = Callable[[str, int, int], None]


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
    try:
        check = verify(artifact, prepared, reference, transport)
        report = transport.measure(artifact.path, options)
    except DeviceError as exc:
        return failed_record(artifact, prepared, transport, str(exc))
    power = report.power
    return ResultRecord(
        **_identity(artifact, prepared, transport),
        accuracy=check.accuracy if check else None,
        float_accuracy=check.float_accuracy if check else None,
        accuracy_delta=check.accuracy_delta if check else None,
        agreement=check.agreement if check else None,
        latency_ms=report.latency_ms, load_ms=report.load_ms,
        first_inference_ms=report.first_inference_ms, peak_rss_mb=report.peak_rss_mb,
        rss_growth_mb=report.rss_growth_mb,
        runtime=f"{report.runtime} {report.runtime_version or ''}".strip(),
        threads=report.threads, device=device_facts(report, transport),
        samples_ms=list(report.samples_ms),
        energy_mj=power.energy_mj, energy_reason=power.reason)


def device_facts(report: MeasureReport,
                 transport: Transport) -> dict[str, Any]:
    """The board's state around the measurement and what ran it, as the agent reported."""
    data = report.to_dict()
    facts = {key: data[key] for key in ("device_before", "device_after", "throttled_during",
                                        "throttle_c", "python", "agent_version", "lock_wait_s",
                                        "power", "warmup", "delegate", "execution_providers",
                                        "threads_requested", "protocol_version")}
    target = data["target"] or {"name": transport.target}
    facts.update({key: value for key, value in target.items() if value is not None})
    return facts


def measure_all(artifacts: list[Artifact], prepared: Prepared, transport: Transport,
                options_for: Callable[[Artifact], MeasureOptions], *,
                reference: np.ndarray | None,
                progress: ProgressFn | None = None) -> list[ResultRecord]:
    """Verify and measure every artifact; any failure on the board is that artifact's
    failed record, and the finished records of the others are kept."""
    transport_errors = _transport_errors()
    records = []
    for index, artifact in enumerate(artifacts):
        if progress is not None:
            progress("measuring artifacts", index, len(artifacts))
        try:
            records.append(measure_and_record(artifact, prepared, transport,
                                              options_for(artifact),
                                              reference=reference))
        except transport_errors as exc:
            records.append(failed_record(artifact, prepared, transport,
                                         f"the connection to {transport.target} failed "
                                         f"({type(exc).__name__}: {exc})"))
    if progress is not None:
        progress("measuring artifacts", len(artifacts), len(artifacts))
    return records


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [DeviceError, OSError, EOFError]
    try:
        from paramiko import SSHException

        errors.append(SSHException)
    except ImportError:
        pass
    return tuple(errors)


def failed_record(artifact: Artifact, prepared: Prepared, transport: Transport,
                  error: str) -> ResultRecord:
    """A record for an artifact that could not be measured: no numbers, the reason."""
    return ResultRecord(
        **_identity(artifact, prepared, transport), accuracy=None, float_accuracy=None,
        accuracy_delta=None, agreement=None, latency_ms=None, load_ms=None,
        first_inference_ms=None, peak_rss_mb=None, rss_growth_mb=None, runtime=None,
        threads=None, device={}, error=error)


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
