"""--profile-ops: per-op times from the runtime's own profiler, on real small models."""

from __future__ import annotations

import pytest

from edgecomp.agent.protocol import MeasureReport

QUICK = ["--runs", 3, "--seconds", 0, "--warmup-runs", 1, "--warmup-seconds", 0,
         "--profile-ops", "--profile-runs", 10, "--profile-seconds", 0]


def profiled(agent, model, tmp_path, *extra):
    code, data, stderr = agent("measure", model, *QUICK, "--lock", tmp_path / "lock", *extra)
    assert code == 0, data
    assert "Traceback" not in stderr
    return MeasureReport.from_dict(data).profile


def test_onnxruntime_profile_names_the_graphs_nodes_and_provider(agent, onnx_model, tmp_path):
    profile = profiled(agent, onnx_model, tmp_path)
    assert profile.reason is None and profile.runs >= 10
    # tiny.onnx is MatMul -> Add -> Relu; onnxruntime fuses them into one Gemm node.
    types = {op.op_type for op in profile.ops}
    assert types and types <= {"MatMul", "Add", "Relu", "Gemm", "FusedGemm", "FusedMatMul"}
    assert all(op.name for op in profile.ops)
    assert all(op.executor == "CPUExecutionProvider" and op.accelerated for op in profile.ops)
    assert all(op.ms >= 0 for op in profile.ops) and any(op.ms > 0 for op in profile.ops)


def test_litert_profile_reports_xnnpacks_kernels(agent, tflite_model, tmp_path):
    profile = profiled(agent, tflite_model, tmp_path)
    if profile.reason and "2.3" in profile.reason:
        pytest.skip(profile.reason)
    assert profile.reason is None and profile.runs >= 10, profile
    assert any(op.op_type.startswith("Fully Connected") for op in profile.ops), profile.ops
    assert all(op.executor == "xnnpack" and op.name.startswith("xnnpack:")
               for op in profile.ops)


def test_litert_reference_kernels_are_not_profiled_and_the_report_says_why(agent, tflite_model,
                                                                          tmp_path):
    profile = profiled(agent, tflite_model, tmp_path, "--delegate", "cpu")
    assert profile.ops == () and "not the measured --delegate cpu" in profile.reason
