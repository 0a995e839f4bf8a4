"""--delegate picks what executes, and the report says what actually did."""

from __future__ import annotations

import pytest

from edgecomp.agent.protocol import MeasureReport

QUICK = ["--runs", 3, "--seconds", 0, "--warmup-runs", 1, "--warmup-seconds", 0]


def measure(agent, model, tmp_path, *extra):
    code, data, _ = agent("measure", model, *QUICK, "--lock", tmp_path / "lock", *extra)
    assert code == 0, data
    return MeasureReport.from_dict(data)


def test_litert_default_runs_xnnpack_and_cpu_runs_builtin_kernels(agent, tflite_model, tmp_path):
    default = measure(agent, tflite_model, tmp_path, "--threads", 1)
    assert default.delegate == "xnnpack" and default.execution_providers == ()
    cpu = measure(agent, tflite_model, tmp_path, "--delegate", "cpu", "--threads", 1)
    assert cpu.delegate == "cpu" and cpu.threads == 1
    assert cpu.latency_ms.count >= 3


def test_onnxruntime_reports_the_providers_that_ran(agent, onnx_model, tmp_path):
    default = measure(agent, onnx_model, tmp_path)
    assert default.execution_providers == ("CPUExecutionProvider",)
    cpu = measure(agent, onnx_model, tmp_path, "--delegate", "cpu", "--threads", 1)
    assert cpu.delegate == "CPUExecutionProvider" and cpu.threads == 1


@pytest.mark.parametrize("which, delegate, kind, words", [
    ("onnx_model", "tensorrt", "missing_delegate", "TensorrtExecutionProvider"),
    ("onnx_model", "gpu", "missing_delegate", "CUDAExecutionProvider"),
    ("tflite_model", "gpu", "missing_delegate", "gpu delegate is not on this board"),
    ("tflite_model", "tensorrt", "bad_args", "LiteRT has no tensorrt delegate"),
])
def test_a_missing_delegate_is_one_sentence(agent, request, tmp_path, which, delegate, kind,
                                            words):
    model = request.getfixturevalue(which)
    code, report, stderr = agent("measure", model, *QUICK, "--delegate", delegate,
                                 "--lock", tmp_path / "lock")
    assert code == 2 and report["kind"] == kind and words in report["error"]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("which, delegate, ran, words", [
    ("onnx_model", "tensorrt", "CPUExecutionProvider", "no TensorrtExecutionProvider"),
    ("onnx_model", "gpu", "CPUExecutionProvider", "no CUDAExecutionProvider"),
    ("tflite_model", "gpu", "xnnpack", "gpu delegate is not on this board"),
    ("tflite_model", "tensorrt", "xnnpack", "LiteRT has no tensorrt delegate"),
])
def test_a_missing_delegate_can_fall_back_to_the_cpu_and_says_so(agent, request, tmp_path,
                                                                 which, delegate, ran, words):
    report = measure(agent, request.getfixturevalue(which), tmp_path, "--delegate", delegate,
                     "--on-missing-delegate", "cpu")
    assert report.delegate == ran and report.delegate_requested == delegate
    assert words in report.fallback and "instead" in report.fallback
    assert report.latency_ms.count >= 3


def test_a_delegate_that_ran_has_no_fallback(agent, onnx_model, tflite_model, tmp_path):
    assert measure(agent, onnx_model, tmp_path, "--delegate", "cpu").fallback is None
    assert measure(agent, tflite_model, tmp_path).fallback is None
