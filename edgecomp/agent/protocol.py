"""The agent's reports: typed, versioned records the agent prints and the host parses.

Standard library only and Python 3.8 compatible: the agent imports this on the board,
the host imports it as `edgecomp.agent.protocol`. Every report is one JSON object with
`ok` and `protocol_version`; `from_dict` refuses another version or a missing or
ill-typed key with a `ProtocolError` naming the field.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Optional, Tuple

PROTOCOL_VERSION = 5
AGENT_VERSION = "5"


class ProtocolError(ValueError):
    """A report the host cannot read: another protocol version, or a missing/bad field."""


def _type_name(hint):
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _decode(hint, value, where):
    """`value` checked against the type `hint` and converted (lists -> tuples, records)."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value, where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProtocolError("%s should be an object, got %r" % (where, value))
        return _decode_fields(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ProtocolError("%s should be a list, got %r" % (where, value))
        item = args[0] if args else Any
        items = [_decode(item, v, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ProtocolError("%s should be an object, got %r" % (where, value))
        return dict((k, _decode(args[1], v, "%s.%s" % (where, k))) for k, v in value.items())
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ProtocolError("%s should be an integer, got %r" % (where, value))
    if isinstance(value, hint):
        return value
    raise ProtocolError("%s should be %s, got %r" % (where, _type_name(hint), value))


def _decode_fields(cls, data, where):
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        path = "%s.%s" % (where, field.name)
        if field.name not in data:
            raise ProtocolError("%s is missing" % path)
        values[field.name] = _decode(hints[field.name], data[field.name], path)
    return cls(**values)


class Record(object):
    """Shared to_dict/from_dict of the report records (nested ones included)."""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise ProtocolError("%s should be an object, got %r" % (cls.__name__, data))
        return _decode_fields(cls, data, cls.__name__)


class Message(Record):
    """A top-level report: carries `ok` and the protocol version it was written in."""

    def to_dict(self):
        data = {"ok": True, "protocol_version": PROTOCOL_VERSION}
        data.update(dataclasses.asdict(self))
        return data

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise ProtocolError("%s should be an object, got %r" % (cls.__name__, data))
        version = data.get("protocol_version")
        if version != PROTOCOL_VERSION:
            raise ProtocolError("the agent speaks protocol version %r, this edgecomp speaks %d"
                                % (version, PROTOCOL_VERSION))
        return _decode_fields(cls, data, cls.__name__)


@dataclasses.dataclass(frozen=True)
class Quantization(Record):
    scale: float
    zero_point: int


@dataclasses.dataclass(frozen=True)
class TensorSpec(Record):
    """One model input or output as the runtime sees it."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    quantization: Optional[Quantization]


@dataclasses.dataclass(frozen=True)
class LatencyStats(Record):
    """p50/p90/p99/mean/std (population) in ms, over `count` samples."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    count: int


@dataclasses.dataclass(frozen=True)
class Warmup(Record):
    runs: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class DeviceState(Record):
    """The board's state at one moment; a field is None where it cannot be read."""

    hostname: Optional[str]
    kernel: Optional[str]
    machine: Optional[str]
    cpu_model: Optional[str]
    cores: Optional[int]
    online_cores: Optional[int]
    governor: Optional[str]
    cpu_freq_mhz: Optional[float]
    temperatures_c: Dict[str, float]
    throttled: Optional[int]
    mem_total_mb: Optional[float]
    mem_available_mb: Optional[float]
    disk_free_mb: Optional[float]
    load_avg: Optional[Tuple[float, ...]]
    # ISA features the CPU the agent runs on has, as profile feature names ("neon",
    # "dotprod", "i8mm", "avx2", "avx512-vnni", ...), sorted.
    isa: Tuple[str, ...]
    # None on real hardware; otherwise how the agent's CPU is emulated, e.g.
    # "qemu-user: aarch64 on x86_64". Latencies from an emulated CPU are not board latencies.
    emulated: Optional[str]


@dataclasses.dataclass(frozen=True)
class PowerReport(Record):
    """Energy per inference from the separate power pass; None with a reason if unknown."""

    probe: str
    energy_mj: Optional[float]
    reason: Optional[str]
    idle_w: Optional[float] = None
    avg_w: Optional[float] = None
    idle_samples: Optional[int] = None
    samples: Optional[int] = None
    rate_hz: Optional[float] = None
    iterations: Optional[int] = None
    seconds: Optional[float] = None
    idle_window: Optional[Tuple[float, ...]] = None
    pass_window: Optional[Tuple[float, ...]] = None


@dataclasses.dataclass(frozen=True)
class TargetFacts(Record):
    """Where a report came from; filled in by the host's transport, not by the agent."""

    name: str
    transport: str
    host: Optional[str] = None
    profile: Optional[str] = None
    board_python: Optional[str] = None
    place: Optional[str] = None  # the labgrid place the board was reached through


@dataclasses.dataclass(frozen=True)
class OpTime(Record):
    """One node of the model in the op profile: its median time over the profiled runs."""

    op_type: str  # the graph's op type (Conv, QuantizeLinear) or the delegate's kernel
    name: str  # the node's name in the graph, or "<delegate>:<index>" inside a delegate
    ms: float  # median milliseconds per inference
    executor: str  # what ran it: an execution provider, "xnnpack", "cpu" (LiteRT builtin)
    accelerated: bool  # run by the chosen accelerator/delegate, not the CPU fallback


@dataclasses.dataclass(frozen=True)
class OpProfile(Record):
    """Per-op times from the runtime's own profiler, in a pass apart from the timed runs.

    `ops` is empty and `reason` says why when the runtime cannot profile here.
    """

    source: str  # which profiler produced the numbers
    runs: int
    ops: Tuple[OpTime, ...]
    reason: Optional[str] = None
    threads: Optional[int] = None  # the profiled session's threads; None: runtime default


@dataclasses.dataclass(frozen=True)
class MeasureReport(Message):
    """The agent's `measure` result: timings, memory, what executed, device state, power."""

    agent_version: str
    python: str
    runtime: str
    runtime_version: Optional[str]
    delegate: str  # what executed: "xnnpack", "cpu", "gpu", ... or ORT's providers joined
    execution_providers: Tuple[str, ...]  # onnxruntime's session providers; () for LiteRT
    threads: int
    threads_requested: Optional[int]
    load_ms: float
    first_inference_ms: float
    warmup: Warmup
    samples_ms: Tuple[float, ...]
    latency_ms: LatencyStats
    idle_rss_mb: Optional[float]
    peak_rss_mb: Optional[float]
    rss_growth_mb: Optional[float]
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    device_before: DeviceState
    device_after: DeviceState
    throttle_c: float
    throttled_during: Optional[bool]
    lock_wait_s: float
    power: PowerReport
    # Ops that ran on the reference CPU kernels although a delegate was wanted: every op
    # when no delegate took any node (LiteRT). None where the runtime does not tell.
    fallback_ops: Optional[Dict[str, int]] = None
    target: Optional[TargetFacts] = None
    delegate_requested: str = "auto"  # the --delegate asked for
    # Why what executed is not what was asked (the accelerator missing or refused, and
    # what ran instead); None when it ran as asked.
    fallback: Optional[str] = None
    profile: Optional[OpProfile] = None  # with --profile-ops


@dataclasses.dataclass(frozen=True)
class RunReport(Message):
    """The agent's `run` result: how many samples it wrote, in which runtime."""

    count: int
    runtime: str
    runtime_version: Optional[str]
    delegate: str
    execution_providers: Tuple[str, ...]
    threads: int


@dataclasses.dataclass(frozen=True)
class AgentInfo(Message):
    """The agent's `info` result: what this board can run and its state now."""

    agent_version: str
    python: str
    arch: Optional[str]
    cpu_model: Optional[str]
    online_cores: int  # CPUs this process may run on (affinity), the threads cap
    runtimes: Dict[str, Optional[str]]  # runtime -> version, None where not installed
    execution_providers: Tuple[str, ...]  # onnxruntime's available providers
    device: DeviceState
    missing: Tuple[str, ...]  # one install hint per format no runtime can load


def failure(message, kind):
    """The report of a failed command: one sentence and a short kind code."""
    return {"ok": False, "protocol_version": PROTOCOL_VERSION, "error": message, "kind": kind}


__all__ = ["PROTOCOL_VERSION", "AGENT_VERSION", "ProtocolError", "Quantization", "TensorSpec",
           "LatencyStats", "Warmup", "DeviceState", "PowerReport", "TargetFacts", "OpTime",
           "OpProfile",
           "MeasureReport", "RunReport", "AgentInfo", "failure"]
