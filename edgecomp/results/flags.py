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
