"""The on-device agent, run as a board runs it: a subprocess printing one JSON object."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgecomp.remote.base import AGENT_PATH

sys.path.insert(0, str(AGENT_PATH.parent))
import edgecomp_agent  # noqa: E402  (the agent is a standalone script, imported for unit tests)


def agent(*args, env=None, timeout=120) -> tuple[int, dict, str]:
    result = subprocess.run([sys.executable, str(AGENT_PATH), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON line, got: {result.stdout!r}"
    return result.returncode, json.loads(lines[0]), result.stderr


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    """A tiny real ONNX model: relu(x @ W + b)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("agent") / "tiny.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory) -> Path:
    import litert_torch
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU()).eval()
    path = tmp_path_factory.mktemp("agent") / "tiny.tflite"
    litert_torch.convert(module, (torch.zeros(1, 16),)).export(str(path))
    return path


def test_info_lists_runtimes_and_device():
    code, report, _ = agent("info")
    assert code == 0 and report["ok"]
    assert report["runtimes"]["onnxruntime"] and report["runtimes"]["ai_edge_litert"]
    assert report["device"]["cores"] >= 1
    assert report["device"]["mem_total_mb"] > 0


@pytest.mark.parametrize("which", ["onnx_model", "tflite_model"])
def test_measure_honours_runs_seconds_and_warmup(which, request, tmp_path):
    model = request.getfixturevalue(which)
    started = time.perf_counter()
    code, report, _ = agent("measure", model, "--runs", 25, "--seconds", 0.3,
                            "--warmup-runs", 7, "--warmup-seconds", 0.1, "--threads", 1,
                            "--lock", tmp_path / "lock")
    assert code == 0, report
    assert report["runtime"] == ("onnxruntime" if which == "onnx_model" else "ai_edge_litert")
    assert report["threads"] == 1
    assert report["warmup"]["runs"] >= 7 and report["warmup"]["seconds"] >= 0.1
    samples = report["samples_ms"]
    assert len(samples) >= 25 and report["latency_ms"]["count"] == len(samples)
    assert sum(samples) / 1000.0 <= time.perf_counter() - started
    assert report["load_ms"] > 0 and report["first_inference_ms"] > 0
    assert report["peak_rss_mb"] >= report["idle_rss_mb"] > 0
    assert report["rss_growth_mb"] == pytest.approx(report["peak_rss_mb"] - report["idle_rss_mb"])
    assert report["inputs"][0]["shape"] == [1, 16]
    assert report["power"]["energy_mj"] is None and report["power"]["reason"]


def test_statistics_match_numpy():
    rng = np.random.default_rng(3)
    samples = list(rng.gamma(2.0, 1.5, size=1001))
    stats = edgecomp_agent.latency_stats(samples)
    assert stats["p50"] == pytest.approx(np.percentile(samples, 50))
    assert stats["p90"] == pytest.approx(np.percentile(samples, 90))
    assert stats["p99"] == pytest.approx(np.percentile(samples, 99))
    assert stats["mean"] == pytest.approx(np.mean(samples))
    assert stats["std"] == pytest.approx(np.std(samples))
    assert stats["count"] == 1001
    assert edgecomp_agent.latency_stats([2.0])["p99"] == 2.0


def test_run_writes_dequantized_outputs(onnx_model, tmp_path):
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    code, report, _ = agent("run", onnx_model, "--input-npz", tmp_path / "in.npz",
                            "--output-npz", tmp_path / "out.npz")
    assert code == 0 and report["count"] == 5
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_model))
    expected = np.concatenate([session.run(None, {"x": x[i:i + 1]})[0] for i in range(5)])
    assert np.allclose(np.load(tmp_path / "out.npz")["y"], expected)


def test_missing_and_corrupt_artifacts_are_json_errors(tmp_path, onnx_model):
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


def test_missing_runtime_names_the_package(tmp_path, onnx_model):
    """With onnxruntime hidden, the error says which package to install."""
    fake = tmp_path / "fake"
    (fake / "onnxruntime").mkdir(parents=True)
    (fake / "onnxruntime" / "__init__.py").write_text("raise ImportError('broken install')\n")
    code, report, stderr = agent("measure", onnx_model, "--lock", tmp_path / "l",
                                 env={"PYTHONPATH": str(fake)})
    assert code == 2 and report["kind"] == "missing_runtime"
    assert "pip install onnxruntime" in report["error"]
    assert "Traceback" not in stderr


def test_two_measurements_serialize_through_the_board_lock(onnx_model, tmp_path):
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


def test_lock_timeout_names_the_holder_and_dead_holders_release(onnx_model, tmp_path):
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


SYSROOT_FILES = {
    # Recorded from a Raspberry Pi 4 Model B (Raspberry Pi OS bookworm, kernel 6.6).
    "proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\n\n"
                    "Hardware\t: BCM2835\nRevision\t: c03114\n"
                    "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
    "proc/meminfo": "MemTotal:        7998920 kB\nMemFree:         7340112 kB\n"
                    "MemAvailable:    7632348 kB\n",
    "sys/devices/system/cpu/online": "0-3\n",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "ondemand\n",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "1800000\n",
    "sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
    "sys/class/thermal/thermal_zone0/temp": "48686\n",
}


def test_device_state_from_a_recorded_board(tmp_path, monkeypatch):
    for name, text in SYSROOT_FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("EDGECOMP_AGENT_SYSROOT", str(tmp_path))
    state = edgecomp_agent.device_state()
    assert state["cpu_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert state["online_cores"] == 4
    assert state["governor"] == "ondemand" and state["cpu_freq_mhz"] == 1800.0
    assert state["temperatures_c"] == {"cpu-thermal": 48.686}
    assert state["mem_total_mb"] == pytest.approx(7998920 / 1024)


def test_throttling_flags():
    assert edgecomp_agent.parse_throttled("throttled=0x50005\n") == 0x50005
    quiet = {"throttled": 0, "temperatures_c": {"cpu": 50.0}}
    assert edgecomp_agent.throttled_during(quiet, quiet, 80.0) is False
    assert edgecomp_agent.throttled_during(quiet, {"throttled": 0x40000,
                                                   "temperatures_c": {}}, 80.0) is True
    assert edgecomp_agent.throttled_during(quiet, {"throttled": None,
                                                   "temperatures_c": {"cpu": 85.0}}, 80.0)
    assert edgecomp_agent.throttled_during({}, {"temperatures_c": {}}, 80.0) is None


def test_agent_runs_on_python_38_syntax_and_imports_only_the_stdlib():
    vermin = Path(sys.executable).parent / "vermin"
    result = subprocess.run([str(vermin), "-t=3.8-", "--no-tips",
                             "--violations", "--eval-annotations", str(AGENT_PATH)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    tree = ast.parse(AGENT_PATH.read_text())
    allowed_lazy = {"numpy", "onnxruntime", "tensorflow", "ai_edge_litert", "tflite_runtime"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed_lazy, name
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in top_level:
        for alias in node.names:
            assert alias.name.split(".")[0] in sys.stdlib_module_names
