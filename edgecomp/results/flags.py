"""What the user must know about a record, beside its numbers: an artifact below the
agreement target, int8 slower than its fp32 twin, ops that no delegate took."""

from __future__ import annotations

import dataclasses

from edgecomp.quantize.target import AgreementTarget
from edgecomp.results.agreement import Verification
from edgecomp.results.record import Flag, FlagKind


def flag_records(records: list, target: AgreementTarget) -> list:
    """Records with what the user must know in `flags`: an artifact below the agreement
    target (quantized, or compressed by a recipe), a quantized artifact slower than its
    fp32 twin (interleaved timing), ops that ran outside the delegate."""
    flagged = []
    for record in records:
        flags = list(record.flags)
        quantized = record.precision != "fp32"
        # Anything but the plain float export is judged: quantized, or compressed by a
        # recipe (its outputs are compared with the uncompressed model's).
        changed = quantized or record.technique not in ("none", "")
        if changed and record.agreement is not None:
            check = Verification(record.accuracy, record.float_accuracy, record.accuracy_delta,
                                 record.agreement, 0)
            if not target.met(check):
                measured = f"cosine {record.agreement.cosine:.4f}"
                if record.accuracy_delta is not None:
                    measured += f", top-1 {record.accuracy_delta:+.2f} pt"
                if target.min_decision is not None and record.agreement.decision is not None:
                    measured += f", same call {record.agreement.decision:.1f} %"
                flags.append(Flag(FlagKind.BELOW_TARGET,
                                  f"below the agreement target ({measured}; target "
                                  f"{target.describe()})"))
        fallback = record.device.fallback_ops if record.device is not None else None
        if fallback:
            ops = ", ".join(f"{op}×{n}" for op, n in sorted(fallback.items(),
                                                            key=lambda kv: -kv[1])[:6])
            flags.append(Flag(FlagKind.NO_DELEGATE,
                              f"no delegate took any node: all {sum(fallback.values())} ops "
                              f"ran on the reference CPU kernels (read from the loaded "
                              f"model): {ops}"))
        if quantized and record.p50_ratio is not None and record.p50_ratio > 1.0:
            flags.append(Flag(FlagKind.SLOWER_THAN_FP32,
                              f"slower than fp32 in {record.runtime or 'its runtime'}: p50 "
                              f"×{record.p50_ratio:.2f} timed interleaved; keep the fp32 "
                              "artifact on this target"))
        flagged.append(dataclasses.replace(record, flags=flags))
    return flagged


# The short codes of the tables' flag column, explained in one legend under each table:
# capitals for what the artifact does (its outputs, where it ran), small letters for how
# far its timing can be trusted, so a busy board never reads as a broken artifact.
FLAG_CODES = {
    FlagKind.BELOW_TARGET: ("A", "below the agreement target against the float model"),
    FlagKind.SLOWER_THAN_FP32: ("S", "quantized, yet slower than its fp32 twin"),
    FlagKind.NO_DELEGATE: ("D", "no delegate took any node"),
    FlagKind.NOT_AS_PLANNED: ("P", "the planned accelerator did not run"),
    FlagKind.UNPLANNED_CPU: ("C", "ran on the CPU of a board with an accelerator"),
    FlagKind.NOTE: ("N", "a note"),
}
TIMING_CODES = {
    "l": "board busy: load above its cores",
    "h": "the board throttled",
    "u": "unstable timing: spread, drift, few samples or disagreeing rounds",
}


def flag_codes(record) -> tuple[list[str], list[str]]:
    """A record's codes: (what the artifact does, how its timing went), in legend order."""
    from edgecomp.results.stability import MAX_LOAD_PER_CORE

    kinds = {flag.kind for flag in record.flags}
    artifact = [FLAG_CODES[kind][0] for kind in FLAG_CODES if kind in kinds]
    timing = []
    figure = record.stability
    if figure is not None and not figure.stable:
        busy = figure.load_per_core is not None and figure.load_per_core > MAX_LOAD_PER_CORE
        timing = [code for code, on in (("l", busy), ("h", bool(figure.throttled))) if on]
        if len(figure.reasons) > len(timing):  # a reason beside the load and the heat
            timing.append("u")
    return artifact, timing


def codes_text(record) -> str:
    """The flag column's cell: "A D", "l u", "A · l" (the artifact's codes first)."""
    artifact, timing = flag_codes(record)
    return " · ".join(part for part in (" ".join(artifact), " ".join(timing)) if part)


def legend(records) -> list[str]:
    """One line per group of the codes these records carry, each code with its meaning
    (empty when none carries a code)."""
    artifact: set[str] = set()
    timing: set[str] = set()
    for record in records:
        found = flag_codes(record)
        artifact.update(found[0])
        timing.update(found[1])
    lines = []
    if artifact:
        lines.append("flags: " + " · ".join(f"{code} {meaning}" for code, meaning
                                            in FLAG_CODES.values() if code in artifact)
                     + " (each said in full below the table and in --json `flags`)")
    if timing:
        lines.append("timing: " + " · ".join(f"{code} {meaning}" for code, meaning
                                             in TIMING_CODES.items() if code in timing)
                     + " (reasons in the warnings and in --json `stability`)")
    return lines
