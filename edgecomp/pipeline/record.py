"""Records from what a board reported: one measured artifact each, failed ones included, and
the store they go to.

The store is opened and checked before anything is measured (`check_store`), so a wrong
password or a missing server ends the command in seconds; if recording still fails after
measuring, the run is kept in the spool (`results.store.spool`) and `RunKept` carries the
records, so the command prints and writes them all the same.

A record names what was measured where (`identity`: the artifact's manifest, the plan and
recipe, the machine that built it), the agent's numbers, the board's state around the
timing, and what ran the verification, so that a reader can check it ran where it was
timed.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import edgecomp
from edgecomp.agent.protocol import MeasureReport, RunReport
from edgecomp.errors import EdgecompError, plain_text
from edgecomp.export.base import Artifact
from edgecomp.pipeline.build import Prepared
from edgecomp.remote.base import Transport
from edgecomp.results.agreement import Verification
from edgecomp.results.device import DeviceFacts
from edgecomp.results.execution import execution_flags, summarize_profile
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import measured


def host_facts() -> dict[str, Any]:
    """The machine and software that built the artifacts, stored with every record."""
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "edgecomp": edgecomp.__version__}


def identity(artifact: Artifact, prepared: Prepared, target: str,
             transport: str) -> dict[str, Any]:
    """What every record of an artifact says about what was measured where."""
    manifest = artifact.manifest
    calibration = manifest.calibration
    return dict(model=manifest.model, technique=manifest.technique,
                target=target, format=artifact.format.value,
                precision=artifact.precision.value, size_bytes=artifact.size_bytes,
                transport=transport, artifact_sha256=manifest.sha256,
                artifact_name=artifact.path.name, source_sha256=manifest.source_sha256,
                calib_sha256=calibration.sha256 if calibration else None,
                calib_source=calibration.source if calibration else None,
                manifest=manifest, plan=prepared.plan,
                # The recipe made every artifact of the run but the uncompressed baseline
                # exported beside them (technique "none"), which carries no recipe.
                recipe=prepared.recipe if manifest.technique != "none" else None,
                host=host_facts())


def measured_record(artifact: Artifact, prepared: Prepared, transport: Transport,
                    report: MeasureReport, check: Verification | None, *,
                    verified_by: RunReport | None) -> ResultRecord:
    """The record of a measured artifact: the agent's report, its verification (`check`,
    made by `verified_by`), the artifact and the plan."""
    power = report.power
    runtime = f"{report.runtime} {report.runtime_version or ''}".strip()
    device = DeviceFacts.of_report(report, verified_by=verified_by)
    return ResultRecord(
        flags=execution_flags(device, prepared.plan, fmt=artifact.format, runtime=runtime),
        profile=summarize_profile(report.profile),
        **identity(artifact, prepared, transport.target, transport.name),
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


def failed_record(artifact: Artifact, prepared: Prepared, where: Any, error: str) -> ResultRecord:
    """A record for an artifact that could not be measured on `where` (a transport, or a
    board that could not be reached): no numbers, the reason."""
    return ResultRecord(
        **identity(artifact, prepared, where.target, where.name), accuracy=None,
        float_accuracy=None, accuracy_delta=None, agreement=None, latency_ms=None,
        load_ms=None, first_inference_ms=None, peak_rss_mb=None, rss_growth_mb=None,
        runtime=None, threads=None, device=None, error=plain_text(error))


class RunKept(EdgecompError):
    """The run was measured but the store failed when recording it: its records (`records`,
    with their run id) are kept in the spool file `path` until the store takes them (None
    when the spool could not be written either)."""

    def __init__(self, message: str, *, records: list[ResultRecord], path):
        super().__init__(message)
        self.records = records
        self.path = path


def check_store() -> None:
    """Open the results store (connect, check or migrate its schema) and close it: called
    before measuring, so that a store that cannot take the run fails before the work."""
    from edgecomp.results.store import Store

    with Store():
        pass


def record_stage(records: list[ResultRecord], *, command: str) -> str | None:
    """Store one run's records in a single transaction; returns the run id. When the store
    fails, the run is kept in the spool and `RunKept` is raised."""
    from dataclasses import replace

    from edgecomp.results.store import Store, new_run_id, spool, spool_name

    if not records:
        return None
    run_id = new_run_id()
    try:
        with Store() as store:
            return store.add_run(records, command=command, run_id=run_id)
    except EdgecompError as exc:
        records = [replace(r, run_id=run_id) for r in records]
        reason = str(exc).rstrip(".")
        try:
            path = spool.keep(records, run_id=run_id, command=command,
                              store_name=spool_name())
        except OSError as lost:
            raise RunKept(f"{reason}; the run could not be kept on this machine either "
                          f"({lost.strerror or lost}): its results are only in what this "
                          "command prints and in --json.", records=records, path=None) from exc
        raise RunKept(f"{reason}; the run's {len(records)} measured result(s) are kept in "
                      f"{path} and are recorded by the next command that opens this store, "
                      "or by `edgecomp results push`.", records=records, path=path) from exc
