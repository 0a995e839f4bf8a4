"""The agent end to end, run as a board runs it, and its portability rules."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgecomp.agent.protocol import AgentInfo, MeasureReport, RunReport

AGENT_DIR = Path(__file__).resolve().parents[2] / "edgecomp" / "agent"
# Shipped in the zipapp beside the agent, which finds its runtimes and probes with it.
REGISTRY = AGENT_DIR.parent / "registry.py"
RUNTIMES = {"numpy", "onnxruntime", "tensorflow", "ai_edge_litert", "tflite_runtime"}


def test_info_lists_runtimes_and_device(agent):
    code, report, _ = agent("info")
    assert code == 0
    info = AgentInfo.from_dict(report)
    assert info.runtimes["onnxruntime"] and info.runtimes["ai_edge_litert"]
    assert "CPUExecutionProvider" in info.execution_providers
    assert 1 <= info.online_cores <= info.device.cores
    assert info.device.mem_total_mb > 0 and info.arch


@pytest.mark.parametrize("which", ["onnx_model", "tflite_model"])
def test_measure_honours_runs_seconds_warmup_and_threads(agent, which, request, tmp_path):
    model = request.getfixturevalue(which)
    started = time.perf_counter()
    code, data, _ = agent("measure", model, "--runs", 25, "--seconds", 0.3,
                          "--warmup-runs", 7, "--warmup-seconds", 0.1, "--threads", 1,
                          "--lock", tmp_path / "lock")
    assert code == 0, data
    report = MeasureReport.from_dict(data)
    assert report.runtime == ("onnxruntime" if which == "onnx_model" else "ai_edge_litert")
    assert report.threads == 1 and report.threads_requested == 1
    assert report.warmup.runs >= 7 and report.warmup.seconds >= 0.1
    assert len(report.samples_ms) >= 25 and report.latency_ms.count == len(report.samples_ms)
    assert sum(report.samples_ms) / 1000.0 <= time.perf_counter() - started
    assert report.load_ms > 0 and report.first_inference_ms > 0
    assert report.peak_rss_mb >= report.idle_rss_mb > 0
    assert report.rss_growth_mb == pytest.approx(report.peak_rss_mb - report.idle_rss_mb)
    assert report.inputs[0].shape == (1, 16)
    assert report.power.energy_mj is None and report.power.reason
    assert report.throttle_c == 80.0


def test_throttle_temperature_comes_from_the_option(agent, onnx_model, tmp_path):
    code, data, _ = agent("measure", onnx_model, "--runs", 2, "--seconds", 0,
                          "--warmup-seconds", 0, "--throttle-c", 1.5, "--lock", tmp_path / "l")
    assert code == 0, data
    report = MeasureReport.from_dict(data)
    assert report.throttle_c == 1.5
    if report.device_after.temperatures_c:  # any real board is above 1.5 °C
        assert report.throttled_during is True


def test_run_writes_dequantized_outputs(agent, onnx_model, tmp_path):
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    code, report, _ = agent("run", onnx_model, "--input-npz", tmp_path / "in.npz",
                            "--output-npz", tmp_path / "out.npz", "--threads", 1)
    assert code == 0
    run = RunReport.from_dict(report)
    assert run.count == 5 and run.threads == 1
    assert run.execution_providers == ("CPUExecutionProvider",)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_model))
    expected = np.concatenate([session.run(None, {"x": x[i:i + 1]})[0] for i in range(5)])
    assert np.allclose(np.load(tmp_path / "out.npz")["out0"][:, 0], expected)


def test_missing_and_corrupt_artifacts_are_json_errors(agent, tmp_path, onnx_model):
    code, report, stderr = agent("measure", tmp_path / "nope.onnx", "--lock", tmp_path / "l")
    assert code == 2 and report["kind"] == "bad_artifact" and "does not exist" in report["error"]
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(onnx_model.read_bytes()[:40])
    code, report, stderr = agent("measure", truncated, "--lock", tmp_path / "l")
    assert code == 2 and report["kind"] == "bad_artifact"
    assert "Traceback" not in stderr
    code, report, _ = agent("measure", onnx_model, "--runtime", "tflite_runtime")
    assert code == 2 and report["kind"] == "bad_args"
    code, report, _ = agent("measure")
    assert code == 2 and report["kind"] == "bad_args"
    code, report, _ = agent("measure", onnx_model, "--delegate", "warp-drive")
    assert code == 2 and report["kind"] == "bad_args" and "delegate" in report["error"]


def test_missing_runtime_names_the_package(agent, tmp_path, onnx_model):
    """With onnxruntime hidden, the error says which package to install."""
    fake = tmp_path / "fake"
    (fake / "onnxruntime").mkdir(parents=True)
    (fake / "onnxruntime" / "__init__.py").write_text("raise ImportError('broken install')\n")
    code, report, stderr = agent("measure", onnx_model, "--lock", tmp_path / "l",
                                 env={"PYTHONPATH": str(fake)})
    assert code == 2 and report["kind"] == "missing_runtime"
    assert "pip install onnxruntime" in report["error"]
    assert "Traceback" not in stderr


def test_two_measurements_serialize_through_the_board_lock(agent, onnx_model, tmp_path):
    lock = tmp_path / "board.lock"
    results = []

    def run():
        results.append(agent("measure", onnx_model, "--runs", 5, "--seconds", 1.0,
                             "--warmup-seconds", 0, "--lock", lock))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    waits = sorted(report["lock_wait_s"] for _, report, _ in results)
    assert all(code == 0 for code, _, _ in results)
    assert waits[1] >= 0.5, waits  # the second waited for most of the first one's second


def test_lock_timeout_names_the_holder_and_dead_holders_release(agent, onnx_model, tmp_path):
    lock = tmp_path / "board.lock"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import fcntl, json, os, time
h = open({str(lock)!r}, 'a+'); fcntl.flock(h, fcntl.LOCK_EX)
h.write(json.dumps({{'pid': os.getpid(), 'since': time.time(), 'what': 'other.tflite'}})); h.flush()
print('held', flush=True); time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    code, report, _ = agent("measure", onnx_model, "--lock", lock, "--lock-timeout", 0.5)
    assert code == 2 and report["kind"] == "lock_timeout"
    assert f"pid {holder.pid}" in report["error"] and "other.tflite" in report["error"]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    code, report, _ = agent("measure", onnx_model, "--lock", lock, "--lock-timeout", 2,
                            "--runs", 3, "--seconds", 0)
    assert code == 0 and report["lock_wait_s"] < 1.0


def agent_files() -> list[Path]:
    """Every file the agent's zipapp carries: the agent package and the registry module."""
    files = sorted(p for p in AGENT_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(files) > 10 and AGENT_DIR / "power" / "hwmon.py" in files
    assert AGENT_DIR / "runtimes" / "onnxruntime.py" in files
    return [*files, REGISTRY]


def test_the_whole_agent_package_runs_on_python_38():
    vermin = Path(sys.executable).parent / "vermin"
    result = subprocess.run([str(vermin), "-t=3.8-", "--no-tips", "--violations",
                             "--eval-annotations", *map(str, agent_files())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", agent_files(),
                         ids=lambda p: str(p.relative_to(AGENT_DIR.parent)))
def test_agent_imports_only_the_stdlib_and_runtimes(path):
    """Top-level imports are stdlib or the package itself; runtimes only inside functions."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            continue  # the agent's own modules, always relative inside the zipapp
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in RUNTIMES, (path, name)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert all(n.split(".")[0] in sys.stdlib_module_names for n in names), path
    assert len(path.read_text().splitlines()) <= 400, f"{path} is over 400 lines"


def test_agent_module_names_do_not_shadow_the_stdlib():
    for path in agent_files():
        if path.stem != "__init__" and path.stem != "__main__":
            assert path.stem not in sys.stdlib_module_names, path
