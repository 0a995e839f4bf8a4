"""The plan: a typed, frozen set of decisions for one model on one board, each with its reason.

Every field of `Plan` is a decision a stage of `deploy` applies (format, runtime and
delegate to the measurement, precision and quantization scheme to the exporters, pruning
kind and channel multiple to the recipe, threads to the agent). `DECISIONS` is the one table
of what a user may set with `--set key=value`; `edgecomp.hardware.planner` makes plans.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from edgecomp.config import key_value
from edgecomp.errors import InputError
from edgecomp.vocab import (ActivationDtype, DelegateName, Format, IoDtype, Precision,
                            PruningKind, RuntimeName, Vocabulary)


class QuantScheme(Vocabulary):
    """How int8 weights are scaled."""

    PER_CHANNEL = "per_channel_symmetric"
    PER_TENSOR = "per_tensor_symmetric"


class MemoryFit(Vocabulary):
    OK = "ok"
    TIGHT = "tight"
    TOO_LARGE = "too-large"


@dataclass(frozen=True)
class Decision:
    """One decision for display and storage."""

    key: str
    value: Any
    reason: str
    overridden: bool = False


@dataclass(frozen=True)
class Plan:
    """The decisions for one model on one board, each applied by a stage of deploy."""

    profile: str
    model: str
    format: Format  # exported
    runtime: RuntimeName  # measures artifacts of `format`
    delegate: DelegateName  # where that runtime executes them
    precision: Precision  # exported beside the fp32 baseline
    quant_scheme: QuantScheme  # int8 weight scales
    activation_symmetric: bool  # int8 activation ranges
    activation_dtype: ActivationDtype  # ONNX static int8 activations: int8 or uint8
    io_dtype: IoDtype  # an int8 artifact's input/output tensors
    reduce_range: bool  # 7-bit ONNX weights
    pruning: PruningKind  # what a recipe's generic `prune` pass becomes
    channel_multiple: int  # channel counts after structured pruning are rounded to it
    threads: int  # runtime threads on the board
    reasons: Mapping[str, str] = field(default_factory=dict)
    overridden: frozenset[str] = frozenset()
    memory_fit: MemoryFit = MemoryFit.OK
    memory_reason: str = ""
    throttle_c: float = 80.0  # the board throttles above this: the agent flags such runs
    warnings: tuple[str, ...] = ()
    board: str = ""  # where the board's own facts came from; "" when it reported none

    @property
    def per_channel(self) -> bool:
        return self.quant_scheme == QuantScheme.PER_CHANNEL

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision(key, getattr(self, key), self.reasons.get(key, ""),
                              key in self.overridden) for key in DECISIONS)

    def to_json(self) -> dict[str, Any]:
        return self.record().to_json()

    def record(self) -> PlanRecord:
        """The plan as results keep it."""
        return PlanRecord(profile=self.profile, model=self.model,
                          decisions=tuple(replace(d, value=json_value(d.value))
                                          for d in self.decisions),
                          memory_fit=self.memory_fit.value, memory_reason=self.memory_reason,
                          throttle_c=self.throttle_c, warnings=self.warnings, board=self.board)


@dataclass(frozen=True)
class PlanRecord:
    """A plan as a result records it: each decision with its value, reason and whether the
    user set it, the memory fit and the warnings. Values are as JSON writes them (an enum's
    text), and a plan of any edgecomp version reads back (`from_json`), so the decisions of
    an old record are shown as they were made."""

    profile: str
    model: str
    decisions: tuple[Decision, ...]
    memory_fit: str = MemoryFit.OK.value
    memory_reason: str = ""
    throttle_c: float | None = None
    warnings: tuple[str, ...] = ()
    board: str = ""  # where the board's own facts came from; "" when it reported none

    def value(self, key: str) -> Any:
        """The value of decision `key`; None where the plan has no such decision."""
        return next((d.value for d in self.decisions if d.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "model": self.model,
                "decisions": {d.key: {"value": d.value, "reason": d.reason,
                                      "overridden": d.overridden} for d in self.decisions},
                "memory_fit": {"value": self.memory_fit, "reason": self.memory_reason},
                "throttle_c": self.throttle_c, "warnings": list(self.warnings),
                "board_facts": self.board}

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> PlanRecord:
        """A plan from `to_json`'s JSON; InputError naming `source` and the field else."""
        from edgecomp.config import validate

        if not isinstance(data, dict) or not isinstance(data.get("decisions"), dict):
            raise InputError(f"{source}: decisions: must be a table.")
        fit = data.get("memory_fit") or {}
        return validate({
            "profile": data.get("profile"), "model": data.get("model"),
            "decisions": [{"key": key, **entry} if isinstance(entry, dict) else entry
                          for key, entry in data["decisions"].items()],
            "memory_fit": fit.get("value", MemoryFit.OK.value) if isinstance(fit, dict)
            else fit, "memory_reason": fit.get("reason", "") if isinstance(fit, dict) else "",
            "throttle_c": data.get("throttle_c"), "warnings": data.get("warnings") or [],
            "board": data.get("board_facts") or ""}, cls, source=source)


# Every decision a user may set with `--set key=value`, and its type: one table that the
# override parser, the display and the JSON read.
DECISIONS: dict[str, type] = {
    "format": Format, "runtime": RuntimeName, "delegate": DelegateName,
    "precision": Precision, "quant_scheme": QuantScheme, "activation_symmetric": bool,
    "activation_dtype": ActivationDtype,
    "io_dtype": IoDtype, "reduce_range": bool, "pruning": PruningKind,
    "channel_multiple": int, "threads": int,
}


def json_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def parse_decision(key: str, text: str) -> Any:
    """A `--set` value as its decision's type; unknown keys and values are one sentence."""
    if key not in DECISIONS:
        raise InputError(f"--set {key}: unknown decision; choose one of {', '.join(DECISIONS)}.")
    kind = DECISIONS[key]
    if kind is bool:
        if text not in ("true", "false"):
            raise InputError(f"--set {key}={text}: choose one of true, false.")
        return text == "true"
    if kind is int:
        if not text.isdigit() or int(text) < 1:
            raise InputError(f"--set {key}={text}: must be a positive integer.")
        return int(text)
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"--set {key}={text}: choose one of "
                         f"{', '.join(m.value for m in kind)}.") from None


def typed_decision(key: str, value: Any) -> Any:
    """An override as its decision's type: text is parsed, typed values are checked."""
    if isinstance(value, str) or key not in DECISIONS:
        return parse_decision(key, str(value))  # a vocabulary member prints as its text
    if not isinstance(value, DECISIONS[key]):
        raise InputError(f"override {key}={value!r}: expected {DECISIONS[key].__name__}.")
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['precision=fp16', 'threads=1'] to typed values, refusing unknown keys and values."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, value = key_value(item, flag="--set", example="key=value")
        overrides[key] = parse_decision(key, value)
    return overrides
