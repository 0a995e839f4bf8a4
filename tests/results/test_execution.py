"""What executed against what the plan named; the op profile's summary."""

from __future__ import annotations

from edgecomp.agent.protocol import OpProfile, OpTime
from edgecomp.hardware.plan import Decision, PlanRecord
from edgecomp.hardware.profiles import get_profile
from edgecomp.results.execution import (execution_flags, is_data_movement, summarize_profile,
                                        unplanned_flag)
from edgecomp.results.record import FlagKind
from tests.results.records import device

JETSON_PLAN = PlanRecord(profile="jetson-orin-nano", model="m",
                         decisions=(Decision("delegate", "tensorrt", ""),
                                    Decision("format", "onnx", "")))


def test_a_fallback_is_flagged_with_the_agents_reason():
    facts = device(delegate="CPUExecutionProvider", delegate_requested="tensorrt",
                   fallback="onnxruntime on this board has no TensorrtExecutionProvider; "
                            "measured with CPUExecutionProvider instead")
    (flag,) = execution_flags(facts, JETSON_PLAN, fmt="onnx", runtime="onnxruntime 1.32.0")
    assert flag.kind is FlagKind.NOT_AS_PLANNED
    assert flag.text.startswith("the plan's tensorrt did not run") and "CPU's" in flag.text


def test_a_plan_naming_an_accelerator_while_the_cpu_ran_is_flagged():
    (flag,) = execution_flags(device(delegate="xnnpack"), JETSON_PLAN, fmt="tflite",
                              runtime="ai_edge_litert 2.3.0")
    assert flag.kind is FlagKind.NOT_AS_PLANNED
    assert "tensorrt delegate for onnx" in flag.text and "xnnpack in ai_edge_litert" in flag.text


def test_a_cpu_plan_run_on_the_cpu_is_not_flagged():
    plan = PlanRecord(profile="pi4", model="m", decisions=(Decision("delegate", "xnnpack", ""),))
    assert execution_flags(device(delegate="xnnpack"), plan, fmt="tflite", runtime="x") == []
    assert execution_flags(device(delegate="xnnpack"), None, fmt="tflite", runtime="x") == []


def test_bench_on_a_board_with_an_accelerator_says_the_cpu_ran():
    flag = unplanned_flag(device(delegate="xnnpack"), get_profile("android-arm64"), runtime="r")
    assert flag.kind is FlagKind.UNPLANNED_CPU
    assert "android-arm64 profile's" in flag.text and "gpu" in flag.text
    assert unplanned_flag(device(delegate="xnnpack"), get_profile("pi4"), runtime="r") is None


def test_the_summary_ranks_ops_and_splits_the_time():
    ops = (OpTime("QLinearConv", "conv1", 3.0, "CUDAExecutionProvider", True),
           OpTime("DequantizeLinear", "dq1", 1.0, "CPUExecutionProvider", False),
           OpTime("Transpose", "t1", 0.5, "CUDAExecutionProvider", True),
           OpTime("QLinearConv", "conv2", 0.5, "CUDAExecutionProvider", True))
    summary = summarize_profile(OpProfile(source="s", runs=5, ops=ops))
    assert [op["name"] for op in summary["top"]] == ["conv1", "dq1", "t1", "conv2"]
    assert abs(sum(op["share"] for op in summary["top"]) - 1.0) < 1e-3
    assert summary["outside_delegate_share"] == 0.2
    assert summary["data_movement_share"] == 0.3
    assert summary["by_type"][0] == {"op_type": "QLinearConv", "ms": 3.5, "share": 0.7}


def test_a_profile_without_ops_keeps_its_reason():
    summary = summarize_profile(OpProfile(source="s", runs=0, ops=(), reason="why"))
    assert summary["reason"] == "why" and summary["top"] == [] and summary["total_ms"] is None


def test_data_movement_ops_by_name():
    for name in ("QuantizeLinear", "DequantizeLinear", "Transpose", "RESHAPE",
                 "Convert (NC)", "Static Reshape (NC)", "DEQUANTIZE"):
        assert is_data_movement(name), name
    for name in ("QLinearConv", "Convolution (NHWC, QC8) IGEMM", "CONV_2D", "HARD_SWISH"):
        assert not is_data_movement(name), name
