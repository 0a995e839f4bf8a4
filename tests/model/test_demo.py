"""The whole demo path: `edgecomp deploy --target local`, then `bench` and `compare`."""

from __future__ import annotations

import json

import pytest

from edgecomp.cli import main
from tests.tables import table_rows

pytestmark = pytest.mark.slow

REQUIRED_KEYS = {"model", "technique", "target", "format", "precision", "size_bytes",
                 "accuracy", "accuracy_delta", "agreement", "latency_ms", "load_ms",
                 "first_inference_ms", "peak_rss_mb", "runtime", "transport", "device"}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    code = main(["deploy", "--target", "local", "--runs", "30", "--seconds", "0.3",
                 "--warmup-seconds", "0.1", "-o", str(out / "artifacts"),
                 "--json", str(out / "results.json")])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


def test_demo_exports_and_measures_four_artifacts(deployed):
    _, results = deployed
    assert {(r["format"], r["precision"]) for r in results} == {
        ("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")}
    for result in results:
        assert REQUIRED_KEYS <= set(result)
        assert result["transport"] == "local" and result["target"] == "local"
        assert result["error"] is None
        latency = result["latency_ms"]
        assert latency["count"] >= 30 and len(result["samples_ms"]) == latency["count"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
        assert result["load_ms"] > 0 and result["first_inference_ms"] > 0
        assert result["peak_rss_mb"] > 0
        assert result["device"]["device_before"]["cores"] >= 1


def test_demo_int8_keeps_accuracy_and_shrinks(deployed):
    _, results = deployed
    by = {(r["format"], r["precision"]): r for r in results}
    for fmt in ("tflite", "onnx"):
        fp32, int8 = by[(fmt, "fp32")], by[(fmt, "int8")]
        assert fp32["accuracy"] > 90.0
        assert abs(int8["accuracy_delta"]) <= 1.0, int8
        assert int8["size_bytes"] <= 0.3 * fp32["size_bytes"]
        assert int8["agreement"]["cosine"] > 0.99
        assert int8["manifest"]["integer_weight_share"] > 0.9


def test_demo_results_are_recorded_and_compared(deployed, capsys):
    out, results = deployed
    assert main(["compare", "--json", str(out / "compare.json")]) == 0
    table = capsys.readouterr().out
    assert "demo-cnn" in table and "speedup" in table
    # The share of same calls beside cosine, and the speedup over the original fp32.
    by = {(row["format"], row["precision"]): row for row in table_rows(table)}
    int8 = by[("tflite", "int8")]
    assert int8["same call"].endswith("%") and float(int8["same call"][:-1]) > 90
    assert by[("tflite", "fp32")]["speedup"] == "1.00x" and int8["speedup"].endswith("x")
    compared = json.loads((out / "compare.json").read_text())
    assert {r["artifact_sha256"] for r in results} <= {r["artifact_sha256"] for r in compared}


def test_bench_measures_an_existing_artifact(deployed, capsys):
    out, results = deployed
    int8 = next(r for r in results if r["format"] == "tflite" and r["precision"] == "int8")
    artifact = out / "artifacts" / int8["artifact_name"]
    assert main(["bench", str(artifact), "--target", "local", "--runs", "20", "--seconds", "0.2",
                 "--eval", "digits:val", "--json", str(out / "bench.json")]) == 0
    bench = json.loads((out / "bench.json").read_text())
    assert len(bench) == 1 and bench[0]["precision"] == "int8"
    assert bench[0]["artifact_sha256"] == int8["artifact_sha256"]
    assert bench[0]["accuracy"] == pytest.approx(int8["accuracy"])
