"""The board's side of a record: its state around the measurement, what executed the
artifact, and what executed its verification, as the agent reported them.

The agent's own report types (`edgecomp.agent.protocol`) are kept as they came, so a
stored record says exactly what the board said.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from edgecomp.agent.protocol import (PROTOCOL_VERSION, DeviceState, MeasureReport, PowerReport,
                                     RunReport, TargetFacts, Warmup)


@dataclass(frozen=True)
class Executor:
    """What ran a model on the board: the runtime, its delegate or provider, its threads."""

    runtime: str
    runtime_version: str | None
    delegate: str
    threads: int
    execution_providers: tuple[str, ...] = ()

    @classmethod
    def of_run(cls, run: RunReport) -> Executor:
        return cls(runtime=run.runtime, runtime_version=run.runtime_version,
                   delegate=run.delegate, threads=run.threads,
                   execution_providers=tuple(run.execution_providers))


@dataclass(frozen=True)
class DeviceFacts:
    """The board around one measurement, and what ran the artifact there.

    `delegate` is what executed the timed runs (the LiteRT delegate or onnxruntime
    provider), `delegate_requested` what was asked for and `fallback` why they differ;
    `verification` is what executed the evaluation set (the same runtime, delegate and
    threads by construction; None where the record has no verification of its own).
    """

    device_before: DeviceState
    device_after: DeviceState
    throttled_during: bool | None  # None where the board tells neither flags nor temperatures
    throttle_c: float | None
    python: str
    agent_version: str
    protocol_version: int
    lock_wait_s: float
    power: PowerReport
    warmup: Warmup
    delegate: str
    execution_providers: tuple[str, ...]
    threads_requested: int | None
    delegate_requested: str
    fallback: str | None
    fallback_ops: dict[str, int] | None
    target: TargetFacts
    verification: Executor | None = None

    @property
    def arch(self) -> str | None:
        """The board's CPU architecture (`platform.machine()` there)."""
        return self.device_before.machine

    @property
    def emulation(self) -> str | None:
        """How its CPU was emulated ("qemu-user: aarch64 on x86_64"); None on hardware."""
        return self.device_before.emulated

    def to_json(self) -> dict[str, Any]:
        """The facts as JSON, with the board's architecture and emulation beside them."""
        return {**dataclasses.asdict(self), "arch": self.arch, "emulation": self.emulation}

    @classmethod
    def of_report(cls, report: MeasureReport, *, verified_by: RunReport | None) -> DeviceFacts:
        """The facts of an agent's `measure` report (its `target` filled in by the
        transport), with what ran the verification."""
        return cls(device_before=report.device_before, device_after=report.device_after,
                   throttled_during=report.throttled_during, throttle_c=report.throttle_c,
                   python=report.python, agent_version=report.agent_version,
                   protocol_version=PROTOCOL_VERSION,
                   lock_wait_s=report.lock_wait_s, power=report.power, warmup=report.warmup,
                   delegate=report.delegate,
                   execution_providers=tuple(report.execution_providers),
                   threads_requested=report.threads_requested,
                   delegate_requested=report.delegate_requested, fallback=report.fallback,
                   fallback_ops=report.fallback_ops, target=report.target,
                   verification=Executor.of_run(verified_by) if verified_by else None)


# The target facts a version-1 record kept flat among the device facts.
_TARGET_KEYS = ("name", "transport", "host", "profile", "board_python", "place")


def device_json_v1(device: dict[str, Any]) -> dict[str, Any] | None:
    """A version-1 record's `device` (target facts flat beside the board's state; {} for a
    failed measurement) in the shape `DeviceFacts` reads."""
    if not device:
        return None
    moved = {key: value for key, value in device.items()
             if key not in (*_TARGET_KEYS, "arch", "emulation")}
    moved["target"] = {key: device.get(key) for key in _TARGET_KEYS if key in device}
    moved.setdefault("verification", None)
    return moved
