"""The flags a record gets: below the agreement target, slower than fp32, no delegate."""

from __future__ import annotations

import pytest

from edgecomp.quantize.target import AgreementTarget
from edgecomp.results.flags import flag_records
from edgecomp.results.record import Agreement, FlagKind, Latency, ResultRecord
from tests.results.records import device, manifest


def record(**changes) -> ResultRecord:
    base = dict(model="m", technique="none", target="local", format="onnx", precision="int8",
                size_bytes=1, accuracy=None, float_accuracy=None, accuracy_delta=None,
                agreement=Agreement(cosine=0.999, max_abs_err=0.1, decision=100.0),
                latency_ms=Latency(p50=1, p90=1, p99=1, mean=1, std=0, count=5),
                load_ms=1, first_inference_ms=1, peak_rss_mb=1, rss_growth_mb=1,
                runtime="onnxruntime 1.32", threads=1, transport="local", device=device(),
                artifact_sha256="a", artifact_name="m.int8.onnx", source_sha256="s",
                calib_sha256=None, calib_source=None,
                manifest=manifest(format="onnx", precision="int8", file="m.int8.onnx"))
    base.update(changes)
    return ResultRecord(**base)


@pytest.mark.parametrize("changes, expected", [
    ({}, []),
    ({"agreement": Agreement(cosine=0.95, max_abs_err=1.0)},
     [(FlagKind.BELOW_TARGET, "below the agreement target")]),
    ({"accuracy_delta": -2.5, "accuracy": 90.0, "float_accuracy": 92.5},
     [(FlagKind.BELOW_TARGET, "below the agreement target")]),
    ({"p50_ratio": 1.4}, [(FlagKind.SLOWER_THAN_FP32, "slower than fp32")]),
    ({"device": device(fallback_ops={"GATHER": 2}, delegate="xnnpack")},
     [(FlagKind.NO_DELEGATE, "no delegate took any node")]),
    ({"precision": "fp32", "technique": "structured-50",
      "agreement": Agreement(cosine=0.12, max_abs_err=9.0)},
     [(FlagKind.BELOW_TARGET, "below the agreement target")]),
    ({"precision": "fp32", "agreement": Agreement(cosine=0.12, max_abs_err=9.0)}, []),
])
def test_flags_say_what_needs_attention(changes, expected):
    (flagged,) = flag_records([record(**changes)], AgreementTarget())
    assert len(flagged.flags) == len(expected)
    for flag, (kind, start) in zip(flagged.flags, expected):
        assert flag.kind is kind and flag.text.startswith(start), flag


def test_a_decision_target_is_checked_when_set():
    low = record(agreement=Agreement(cosine=0.995, max_abs_err=0.1, decision=91.0))
    assert flag_records([low], AgreementTarget())[0].flags == []
    (flagged,) = flag_records([low], AgreementTarget(min_decision=95))
    assert "same call 91.0 %" in flagged.flags[0].text
