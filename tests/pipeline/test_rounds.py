"""Interleaved rounds on a real runtime: `bench` of several artifacts on `local` times them
A/B/A/B, records the per-round ratios and how it was timed, and warns when the board is
busy."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

from edgecomp.cli import main
from edgecomp.results.units import duration_text, times_text
from tests.tables import table_rows

pytestmark = pytest.mark.slow


def matmul_onnx(path, n: int, layers: int = 8):
    """A real ONNX model: `layers` MatMuls of n x n on an 8 x n input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights, nodes, prev = [], [], "x"
    for i in range(layers):
        weights.append(numpy_helper.from_array(
            (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32), f"W{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Relu", [prev], ["y"]))
    graph = helper.make_graph(nodes, "mm", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [8, n])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [8, n])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rounds")
    return matmul_onnx(folder / "big.onnx", 512), matmul_onnx(folder / "small.onnx", 128)


def bench(tmp_path, capsys, *args):
    out = tmp_path / "bench.json"
    code = main(["bench", *map(str, args), "--target", "local", "--threads", "1",
                 "--runs", "20", "--seconds", "0.3", "--json", str(out), "--no-record"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return {r["artifact_name"]: r for r in json.loads(out.read_text())}, captured


def test_bench_of_two_artifacts_times_them_interleaved(models, tmp_path, capsys):
    big, small = models
    results, captured = bench(tmp_path, capsys, big, small, "--wide")
    base, other = results["big.onnx"]["stability"], results["small.onnx"]["stability"]
    assert base["ratio_to"] == other["ratio_to"] == "big.onnx"  # over the first named
    assert results["big.onnx"]["p50_ratio"] == 1.0 and base["ratios"] == []
    assert other["rounds"] == 3 and len(other["ratios"]) == 3 and len(other["round_p50s"]) == 3
    assert statistics.median(other["ratios"]) < 0.5  # 16x fewer MACs
    # Another model: its ratio is kept in the figure, never shown as a speedup over fp32.
    assert results["small.onnx"]["p50_ratio"] is None
    assert other["repeat"] is None and other["min_time"] is None
    for figure in (base, other):
        assert figure["samples"] >= 20 and figure["spread"] >= 1.0
        assert figure["cores"] >= 1 and figure["load"] is not None
        assert figure["rounds_timed_s"] >= 0.8 * 3 * 0.3
    assert "spread" in captured.out and "load" in captured.out  # --wide's columns


def test_fp32_and_int8_of_one_model_get_their_speedup_from_the_rounds(tmp_path, capsys):
    """Two artifacts of one model (manifests): the int8's p50_ratio is the median of its
    per-round ratios over the fp32, as deploy gives it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgecomp.export.bundle import artifact_from_file

    fp32 = matmul_onnx(tmp_path / "mm.fp32.onnx", 512)
    int8 = tmp_path / "mm.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    for path in (fp32, int8):  # one model: the same name and source in both manifests
        manifest = dataclasses.replace(artifact_from_file(path).manifest, model="mm",
                                       source_sha256="ab" * 32, model_sha256="ab" * 32)
        path.with_suffix(".onnx.json").write_text(json.dumps(manifest.to_json()))
    results, captured = bench(tmp_path, capsys, fp32, int8)
    base, other = results["mm.fp32.onnx"], results["mm.int8.onnx"]
    assert base["p50_ratio"] == 1.0 and base["stability"]["ratio_to"] == "mm.fp32.onnx"
    assert other["stability"]["ratio_to"] == "mm.fp32.onnx"
    assert len(other["stability"]["ratios"]) == 3
    assert other["p50_ratio"] == pytest.approx(statistics.median(other["stability"]["ratios"]),
                                               abs=1e-3)
    # One story: the table's speedup is the ratio of the p50s it shows; the rounds' median
    # is kept beside it in --json, named for what it is.
    p50s = base["latency_ms"]["p50"] / other["latency_ms"]["p50"]
    compared = other["comparison"]
    assert compared["speedup_vs_original_fp32"] == pytest.approx(p50s)
    assert compared["speedup_vs_own_fp32"] == pytest.approx(p50s)  # no recipe: the same
    assert compared["interleaved_speedup_vs_own_fp32"] == pytest.approx(1 / other["p50_ratio"])
    (row,) = [row for row in table_rows(captured.out) if row["precision"] != "fp32"]
    assert row["speedup"] == times_text(p50s)
    assert row["p50"] == duration_text(other["latency_ms"]["p50"])


def test_repeat_and_min_time_buy_longer_timing_and_are_recorded(models, tmp_path, capsys):
    big, small = models
    results, _ = bench(tmp_path, capsys, big, small, "--repeat", "4", "--min-time", "2")
    for figure in (r["stability"] for r in results.values()):
        assert (figure["rounds"], figure["repeat"], figure["min_time"]) == (4, 4, 2.0)
        assert figure["round_s"] == 0.5 and len(figure["round_p50s"]) == 4
        assert figure["rounds_timed_s"] >= 0.8 * 2.0  # inference time; the loop's wall is 2 s
    assert len(results["small.onnx"]["stability"]["ratios"]) == 4


def test_a_lone_artifact_gets_rounds_only_when_asked(models, tmp_path, capsys):
    big, _ = models
    alone, _ = bench(tmp_path, capsys, big)
    assert alone["big.onnx"]["stability"]["rounds"] == 0
    assert alone["big.onnx"]["p50_ratio"] is None
    repeated, _ = bench(tmp_path, capsys, big, "--repeat", "2")
    figure = repeated["big.onnx"]["stability"]
    assert figure["rounds"] == 2 and len(figure["round_p50s"]) == 2
    assert figure["ratio_to"] is None and repeated["big.onnx"]["p50_ratio"] is None


def test_a_busy_board_gets_a_warning_saying_why(models, tmp_path, capsys):
    """Busy loops on every core (twice over) while timing: the run must be called unstable,
    with its reason and what to do, on one line."""
    big, _ = models
    cores = os.cpu_count() or 1  # the board's online cores, as the agent counts them
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(2 * cores)]
    try:
        # The 1-minute load average lags: wait until it says what the hogs do (more than
        # one runnable process per core), so the run is unstable by load whatever the
        # scheduler makes of the samples.
        deadline = time.monotonic() + 180
        while os.getloadavg()[0] <= cores + 0.2 and time.monotonic() < deadline:
            time.sleep(1.0)
        results, captured = bench(tmp_path, capsys, big)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    figure = results["big.onnx"]["stability"]
    assert figure["reasons"], figure
    lines = [line for line in captured.err.splitlines() if "is unstable" in line]
    assert len(lines) == 1, captured.err
    assert re.match(r"\([lhu ]+\) timing of big\.onnx on local is unstable: ", lines[0])
    assert figure["reasons"][0] in lines[0]
    assert "quieter board" in lines[0]
    # The flag column carries the timing codes, explained under the table.
    (row,) = table_rows(captured.out)
    assert "l" in row["flags"].split() or "u" in row["flags"].split()
    assert "timing: " in captured.out


@pytest.mark.parametrize("flag, value, words", [
    ("--repeat", "0", "--repeat must be a whole number of rounds"),
    ("--min-time", "-1", "--min-time must be a number of seconds"),
    ("--min-time", "nan", "--min-time must be a number of seconds"),
    ("--threads", "0", "--threads must be a positive number of threads")])
def test_bad_repeat_or_min_time_is_refused(models, capsys, flag, value, words):
    big, _ = models
    assert main(["bench", str(big), "--target", "local", flag, value]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
