"""Result records for the store's tests, with reproducible raw samples, and the typed parts
of a record (manifest, board facts) as a real measurement would give them."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgecomp.agent.protocol import DeviceState, PowerReport, TargetFacts, Warmup
from edgecomp.export.manifest import Manifest
from edgecomp.results.device import DeviceFacts
from edgecomp.results.record import Agreement, Latency, ResultRecord


SHA = "5a" * 32  # the artifact's sha256
SRC = "5c" * 32  # its source's


def manifest(**changes: Any) -> Manifest:
    """The manifest of an fp32 LiteRT artifact of model `m`, with `changes`."""
    base = Manifest(file="m.fp32.tflite", format="tflite", precision="fp32",
                    io_dtype="float32", sha256=SHA, size_bytes=1000, model="m",
                    technique="none", source_sha256=SRC, model_sha256=SRC)
    return dataclasses.replace(base, **changes)


def state(**changes: Any) -> DeviceState:
    """A board's state as the agent reports it, with `changes`."""
    base = DeviceState(hostname="board", kernel="6.1", machine="x86_64", cpu_model="cpu",
                       cores=2, online_cores=2, governor=None, cpu_freq_mhz=None,
                       temperatures_c={}, throttled=None, mem_total_mb=1024.0,
                       mem_available_mb=512.0, disk_free_mb=None, load_avg=None,
                       isa=(), emulated=None)
    return dataclasses.replace(base, **changes)


def device(**changes: Any) -> DeviceFacts:
    """The facts of a measurement on `local`, with `changes`."""
    base = DeviceFacts(
        device_before=state(), device_after=state(), throttled_during=False, throttle_c=80.0,
        python="3.11.7", agent_version="5", protocol_version=5, lock_wait_s=0.0,
        power=PowerReport(probe="none", energy_mj=None, reason="no power sensor"),
        warmup=Warmup(runs=5, seconds=0.5), delegate="xnnpack", execution_providers=(),
        threads_requested=1, delegate_requested="auto", fallback=None, fallback_ops=None,
        target=TargetFacts(name="local", transport="local"))
    return dataclasses.replace(base, **changes)


def record(model: str = "m", *, samples: int = 50, seed: int = 0,
           error: str | None = None) -> ResultRecord:
    """A measured record of `model` with `samples` raw samples drawn from `seed` (none and no
    latency for a failed one, given its `error`)."""
    values = (0.05 + np.random.default_rng(seed).gamma(2.0, 0.003, samples)).tolist()
    return ResultRecord(
        model=model, technique="none", target="local", format="tflite", precision="fp32",
        size_bytes=1000, accuracy=98.0, float_accuracy=98.5, accuracy_delta=-0.5,
        agreement=Agreement(0.999, 0.01),
        latency_ms=None if error else Latency(0.05, 0.06, 0.07, 0.05, 0.01, samples),
        load_ms=1.0, first_inference_ms=2.0, peak_rss_mb=50.0, rss_growth_mb=5.0,
        runtime="ai_edge_litert 2.3.0", threads=1, transport="local",
        device=None if error else device(),
        artifact_sha256=SHA, artifact_name="m.fp32.tflite", source_sha256=SRC,
        calib_sha256=None, calib_source=None, manifest=manifest(model=model),
        samples_ms=[] if error else values, error=error,
        created_at="2026-01-01T00:00:00+00:00")


def as_recorded(records: list[ResultRecord]) -> list[ResultRecord]:
    """Records read back from the store without the run id the store gave them, to compare
    with what was recorded."""
    return [dataclasses.replace(r, run_id=None) for r in records]
