"""The result record: one measured artifact, the schema behind JSON, the database and reports."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

# Latency statistics in milliseconds over the timed runs: the agent protocol's own record,
# so the host stores exactly what the board reported.
from edgecomp.agent.protocol import LatencyStats as Latency  # noqa: F401  (re-exported)
from edgecomp.results.stability import Stability
from edgecomp.vocab import Vocabulary

RECORD_VERSION = 1


class FlagKind(Vocabulary):
    """What a flag on a record is about (`edgecomp.results.flags` and `.execution` set them)."""

    BELOW_TARGET = "below-target"  # below the agreement target against the float model
    SLOWER_THAN_FP32 = "slower-than-fp32"  # quantized, yet slower than its fp32 twin
    NO_DELEGATE = "no-delegate"  # no delegate took any node: every op on reference kernels
    NOT_AS_PLANNED = "not-as-planned"  # the plan's (or requested) accelerator did not run
    UNPLANNED_CPU = "unplanned-cpu"  # bench: ran on the CPU of a board with an accelerator
    NOTE = "note"  # stored before flags had kinds


# The start of each kind's sentence, for flags stored as plain text before they had kinds.
_OLD_FLAG_STARTS = (("below the agreement target", FlagKind.BELOW_TARGET),
                    ("slower than fp32", FlagKind.SLOWER_THAN_FP32),
                    ("no delegate took any node", FlagKind.NO_DELEGATE),
                    ("the plan", FlagKind.NOT_AS_PLANNED),
                    ("the requested", FlagKind.NOT_AS_PLANNED),
                    ("ran on the CPU", FlagKind.UNPLANNED_CPU))


@dataclass(frozen=True)
class Flag:
    """One thing the user must know about a record, beside its numbers: its kind and the
    sentence that says it."""

    kind: FlagKind
    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def from_json(cls, value: Any) -> Flag:
        """A stored flag: {"kind", "text"}, or the plain sentence older records kept."""
        if isinstance(value, str):
            kind = next((k for start, k in _OLD_FLAG_STARTS if value.startswith(start)),
                        FlagKind.NOTE)
            return cls(kind, value)
        return cls(FlagKind(value["kind"]), str(value["text"]))


@dataclass(frozen=True)
class Agreement:
    """How closely an artifact's outputs follow the float model on the evaluation set.

    The headline numbers are for the model's first output: mean (and worst) cosine per
    sample, absolute errors, and `decision`, the share of samples (percent) where the
    artifact makes the float model's call: the same top class for a vector of scores,
    the same side of 0.5 (probabilities) or 0 (logits) for a single value. `outputs`
    holds the same numbers for every output of a model with several.
    """

    cosine: float
    max_abs_err: float
    mean_abs_err: float | None = None
    cosine_min: float | None = None
    decision: float | None = None
    outputs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ResultRecord:
    """Everything known about one artifact measured on one target.

    A failed measurement is a record with `error` set and no latency; it is never
    shown or counted as a success.
    """

    model: str
    technique: str
    target: str
    format: str
    precision: str
    size_bytes: int
    accuracy: float | None
    float_accuracy: float | None
    accuracy_delta: float | None
    agreement: Agreement | None
    latency_ms: Latency | None
    load_ms: float | None
    first_inference_ms: float | None
    peak_rss_mb: float | None
    rss_growth_mb: float | None
    runtime: str | None
    threads: int | None
    transport: str
    device: dict[str, Any]
    artifact_sha256: str
    artifact_name: str
    source_sha256: str
    calib_sha256: str | None
    calib_source: str | None
    manifest: dict[str, Any]
    plan: dict[str, Any] | None = None
    samples_ms: list[float] = field(default_factory=list)
    energy_mj: float | None = None
    energy_reason: str | None = None
    error: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    # p50 over the fp32 artifact of the same model, format and technique, both timed
    # interleaved in the same run (A/B/A/B); None where there is no such pair.
    p50_ratio: float | None = None
    # How it was timed and how stable the timing was (spread, load, throttling, rounds);
    # None in records from before it was kept.
    stability: Stability | None = None
    flags: list[Flag] = field(default_factory=list)  # what the user must know: below target...
    tag: str | None = None  # the run's name (`--tag`), for baselines and filters
    # The git commit, branch and dirty state of the working directory the run started in
    # (CI variables where the checkout is detached); None outside a repository.
    git: dict[str, Any] | None = None
    # True when the board's CPU was emulated (e.g. qemu-user): accuracy and agreement are
    # the board's kernels', latencies are not comparable with real boards.
    emulated: bool = False
    # Per-op times from the runtime's profiler (`--profile-ops`): top ops with their share,
    # the share outside the delegate and in data-movement ops (`results.execution`).
    profile: dict[str, Any] | None = None
    run_id: str | None = None  # the store's run this record belongs to (set when read back)
    created_at: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    record_version: int = RECORD_VERSION

    @property
    def ok(self) -> bool:
        return self.error is None and self.latency_ms is not None

    @property
    def decision(self) -> float | None:
        """Percent of evaluation samples making the float model's call (None if unknown)."""
        return self.agreement.decision if self.agreement else None

    def when(self, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
        """When it was measured, in UTC as `fmt` (`created_at` as stored where it is not
        an ISO time)."""
        try:
            moment = _dt.datetime.fromisoformat(self.created_at)
        except ValueError:
            return self.created_at
        return moment.astimezone(_dt.timezone.utc).strftime(fmt)

    def to_json(self, *, with_samples: bool = True) -> dict[str, Any]:
        """The record as a JSON-ready dict; the keys are documented in the README."""
        data = dataclasses.asdict(self)
        if not with_samples:
            data.pop("samples_ms")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ResultRecord":
        """Rebuild a record from `to_json` output (as stored in the database)."""
        values = dict(data)
        if values.get("latency_ms") is not None:
            values["latency_ms"] = Latency(**values["latency_ms"])
        if values.get("agreement") is not None:
            values["agreement"] = Agreement(**values["agreement"])
        if values.get("stability") is not None:
            values["stability"] = Stability.from_json(values["stability"])
        values["flags"] = [Flag.from_json(flag) for flag in values.get("flags") or []]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
