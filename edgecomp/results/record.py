"""The result record: one measured artifact, the schema behind JSON, the database and reports.

Every part of a record is a frozen type: the artifact's `Manifest`, the plan as applied
(`PlanRecord`) and the recipe run before export (`RecipeRun`), what the board reported
(`DeviceFacts`), the `Flag`s. JSON exists only where a record leaves edgecomp (the store,
`--json`, the report): `to_json` writes the current version, `from_json` reads it and every
earlier one, and names the field that is wrong when the data is not a record.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

# Latency statistics in milliseconds over the timed runs: the agent protocol's own record,
# so the host stores exactly what the board reported.
from edgecomp.agent.protocol import LatencyStats as Latency  # noqa: F401  (re-exported)
from edgecomp.export.manifest import Manifest
from edgecomp.hardware.plan import PlanRecord
from edgecomp.results.agreement import Agreement
from edgecomp.results.device import DeviceFacts, device_json_v1
from edgecomp.results.stability import Stability
from edgecomp.vocab import Vocabulary

# 2: the recipe run has its own field (it was inside `plan`), flags have kinds, the board's
# target facts sit in `device.target` and the verification's executor in
# `device.verification`.
RECORD_VERSION = 2


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
    def from_text(cls, text: str) -> Flag:
        """A flag older records kept as its sentence alone, its kind told by its start."""
        kind = next((k for start, k in _OLD_FLAG_STARTS if text.startswith(start)),
                    FlagKind.NOTE)
        return cls(kind, text)


@dataclass(frozen=True)
class PassRun:
    """What one pass of a recipe did: its options, what it measured, its notes and files."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecipeRun:
    """The recipe a compressed artifact came from: its name, file and text as run (filled
    in by the plan), its `[export]` table and each pass's report."""

    name: str
    source: str
    text: str
    export: dict[str, Any]
    reports: tuple[PassRun, ...]


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
    device: DeviceFacts | None  # None for a measurement that failed
    artifact_sha256: str
    artifact_name: str
    source_sha256: str
    calib_sha256: str | None
    calib_source: str | None
    manifest: Manifest
    plan: PlanRecord | None = None  # the board's plan as applied; None without a profile
    recipe: RecipeRun | None = None  # the recipe run before export; None without one
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
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if with_samples or f.name != "samples_ms"}
        for key in ("agreement", "latency_ms", "stability", "recipe"):
            if data[key] is not None:
                data[key] = dataclasses.asdict(data[key])
        data["device"] = self.device.to_json() if self.device is not None else None
        data["manifest"] = self.manifest.to_json()
        data["plan"] = self.plan.to_json() if self.plan is not None else None
        data["flags"] = [dataclasses.asdict(flag) for flag in self.flags]
        return data

    @classmethod
    def from_json(cls, data: Any, *, source: str = "a stored result") -> ResultRecord:
        """A record from `to_json`'s JSON of this or an earlier version (as stored, or as
        `--json` wrote it); InputError naming `source` and the field when it is not one."""
        from edgecomp.config import field_error, validate

        if not isinstance(data, dict):
            raise field_error(source, "", "must be a table of a result's fields")
        values = dict(data)
        # What a table derived from the record beside it (`--json`'s speedups and shipped
        # size, `ComparisonRow.speedups_json`): worked out again, never read back.
        values.pop("comparison", None)
        version = values.get("record_version", 1)
        if not isinstance(version, int) or not 1 <= version <= RECORD_VERSION:
            raise field_error(source, "record_version",
                              f"{version!r} is not a record version this edgecomp reads "
                              f"(1 to {RECORD_VERSION}); upgrade edgecomp")
        if version == 1:
            values = _from_version_1(values)
        if values.get("plan") is not None:
            values["plan"] = PlanRecord.from_json(values["plan"], source=f"{source}: plan")
        if isinstance(values.get("manifest"), dict):
            values["manifest"] = Manifest.from_json(values["manifest"],
                                                    source=f"{source}: manifest")
        values["record_version"] = RECORD_VERSION
        return validate(values, cls, source=source)


def _from_version_1(values: dict[str, Any]) -> dict[str, Any]:
    """A version-1 record's fields in version 2's shape."""
    plan = dict(values.get("plan") or {})
    values["recipe"] = plan.pop("recipe", None)
    values["plan"] = plan if "decisions" in plan else None
    values["flags"] = [Flag.from_text(flag) if isinstance(flag, str) else flag
                       for flag in values.get("flags") or []]
    device = device_json_v1(values.get("device") or {})
    if device is not None:
        device["target"].setdefault("name", values.get("target"))
        device["target"].setdefault("transport", values.get("transport"))
    values["device"] = device
    return values
