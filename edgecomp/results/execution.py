"""Measured truth over planned truth: what executed an artifact against what its plan (or
its board's profile) named, and the per-op profile summarized.

Pure functions of what the agent reported; `remote.measure` stores their results in each
record's `flags` and `profile`.
"""

from __future__ import annotations

from typing import Any

from edgecomp.agent.protocol import OpProfile
from edgecomp.hardware.plan import PlanRecord
from edgecomp.results.device import DeviceFacts
from edgecomp.results.record import Flag, FlagKind
from edgecomp.agent.runtimes import cpu_executors

# What the agent reports as executing on the CPU (LiteRT's delegates and onnxruntime's
# providers that run on it), as each runtime module declares it.
CPU_EXECUTORS = cpu_executors()
# Ops that move or convert data rather than compute: quantize/dequantize, layout changes.
DATA_MOVEMENT = ("quantize", "dequantize", "transpose", "reshape", "convert", "squeeze",
                 "copy", "pack", "unpack", "concat", "slice", "pad", "cast")
TOP_OPS = 10


def on_cpu(executed: str | None) -> bool:
    return executed in CPU_EXECUTORS


def execution_flags(device: DeviceFacts, plan: PlanRecord | None, *, fmt: str,
                    runtime: str | None) -> list[Flag]:
    """What the user must know about what executed: an accelerator that was asked for and
    did not run, or a plan naming an accelerator while this artifact ran on the CPU."""
    executed = device.delegate
    planned = plan.value("delegate") if plan is not None else None
    planned_format = plan.value("format") if plan is not None else None
    fallback = device.fallback
    if fallback:
        named = f"the plan's {planned}" if planned and not on_cpu(planned) else \
            f"the requested {device.delegate_requested}"
        return [Flag(FlagKind.NOT_AS_PLANNED,
                     f"{named} did not run: {fallback}; the latency is the CPU's")]
    if on_cpu(executed) and planned is not None and not on_cpu(planned):
        scope = "" if planned_format in (None, fmt) else f" for {planned_format}"
        return [Flag(FlagKind.NOT_AS_PLANNED,
                     f"the plan names the {planned} delegate{scope}, but this {fmt} artifact "
                     f"ran on the CPU ({_where(device, runtime)}): the latency is the CPU's")]
    return []


def unplanned_flag(device: DeviceFacts, profile, *, runtime: str | None) -> Flag | None:
    """For a measurement without a plan (bench): it ran on the CPU of a board whose
    hardware profile has an accelerator."""
    if profile is None or not on_cpu(device.delegate):
        return None
    accelerators = [str(getattr(d.name, "value", d.name)) for d in profile.delegates
                    if str(getattr(d.unit, "value", d.unit)) != "cpu"]
    if not accelerators:
        return None
    return Flag(FlagKind.UNPLANNED_CPU,
                f"ran on the CPU ({_where(device, runtime)}); the {profile.name} profile's "
                f"{', '.join(accelerators)} was not used (bench measures each runtime's "
                "default)")


def _where(device: DeviceFacts, runtime: str | None) -> str:
    executed = device.delegate
    return f"{executed} in {runtime}" if runtime else str(executed)


def summarize_profile(profile: OpProfile | None) -> dict[str, Any] | None:
    """The record's `profile`: every op, the top ones by time with their share, the share
    of time outside the accelerator/delegate and in data-movement ops, and the reason when
    the runtime could not be profiled."""
    if profile is None:
        return None
    ops = sorted(profile.ops, key=lambda op: -op.ms)
    total = sum(op.ms for op in ops)

    def share(part: float) -> float | None:
        return round(part / total, 4) if total > 0 else None

    by_type: dict[str, float] = {}
    for op in ops:
        by_type[op.op_type] = by_type.get(op.op_type, 0.0) + op.ms
    outside = sum(op.ms for op in ops if not op.accelerated)
    moving = sum(op.ms for op in ops if is_data_movement(op.op_type))
    return {
        "source": profile.source, "runs": profile.runs, "threads": profile.threads,
        "reason": profile.reason, "total_ms": round(total, 4) if ops else None,
        "top": [{"op_type": op.op_type, "name": op.name, "ms": round(op.ms, 4),
                 "share": share(op.ms), "executor": op.executor} for op in ops[:TOP_OPS]],
        "by_type": [{"op_type": kind, "ms": round(ms, 4), "share": share(ms)}
                    for kind, ms in sorted(by_type.items(), key=lambda kv: -kv[1])],
        "outside_delegate_share": share(outside) if ops else None,
        "data_movement_share": share(moving) if ops else None,
        "ops": [op.to_dict() for op in ops],
    }


def is_data_movement(op_type: str) -> bool:
    """Quantize/dequantize, transpose, reshape-like ops: they move or convert data."""
    lowered = op_type.lower().replace("_", "")
    return any(word in lowered for word in DATA_MOVEMENT)
