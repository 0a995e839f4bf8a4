"""Real pretrained models end to end: int64 token ids, three-input recurrent ONNX, a
convolutional ImageNet network, a prebuilt mediapipe .tflite.

Small evaluation sets keep CI fast; the full tables against the runtimes' own quantizers
come from tools/bench/quantization.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecomp.cli import main
from examples.zoo import data as zoo_data
from examples.zoo import models as zoo

pytestmark = pytest.mark.slow

QUICK = ["--runs", "20", "--seconds", "0.2", "--warmup-seconds", "0.05", "--no-record"]


def write(path: Path, arrays: dict[str, np.ndarray]) -> str:
    np.savez(path, **arrays)
    return str(path)


def records_of(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def int8_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r["precision"] != "fp32"]


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    """all-MiniLM-L6-v2 as published: int64 token ids and attention mask, both formats."""
    folder = tmp_path_factory.mktemp("minilm")
    calib = write(folder / "calib.npz", zoo_data.sentences("calib", 24, 0))
    held_out = write(folder / "eval.npz", zoo_data.sentences("eval", 16, 0))
    code = main(["deploy", "examples.zoo.models:minilm", "--calib", calib, "--eval", held_out,
                 "--target", "local", "--format", "onnx", "--format", "tflite",
                 "--set", "precision=int8", "-o", str(folder / "out"),
                 "--json", str(folder / "r.json"), *QUICK])
    return code, records_of(folder / "r.json")


def test_minilm_is_planned_as_matmul_heavy():
    from edgecomp.model.facts import model_facts
    from edgecomp.model.load import load_model

    source = load_model("examples.zoo.models:minilm")
    facts = model_facts(source.module, source.example_inputs, name=source.name)
    assert facts.conv_share == 0.0
    assert {"embedding", "linear", "layernorm", "gelu"} <= facts.op_types
    assert not [op for op in facts.op_types if op.startswith("other:")], facts.op_types


def test_minilm_deploys_from_int64_token_ids(minilm_run):
    code, records = minilm_run
    assert all(r["error"] is None for r in records), [r["error"] for r in records]
    formats = {r["format"] for r in int8_records(records)}
    assert formats == {"onnx", "tflite"}
    for record in records:
        fed = record["manifest"]["inputs_fed"]
        assert [(i["name"], i["dtype"]) for i in fed] == [("input_ids", "int64"),
                                                          ("attention_mask", "int64")]


def test_minilm_int8_embeddings_keep_cosine_or_are_flagged(minilm_run):
    """Each kept int8 artifact reaches cosine 0.99 on held-out sentences, or the result says
    it did not (flag and exit status)."""
    code, records = minilm_run
    for record in int8_records(records):
        search = record["manifest"]["search"]
        assert search["tried"] and search["kept"]
        if record["agreement"]["cosine"] >= 0.99:
            assert search["met"]
        else:
            assert any(f["kind"] == "below-target" and "below the agreement target" in f["text"]
                       for f in record["flags"])
    assert code == 0 or any(r["flags"] for r in records)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    return (write(folder / "calib.npz", zoo_data.speech("calib", 96, 0)),
            write(folder / "eval.npz", zoo_data.speech("eval", 96, 0)))


def test_silero_vad_deploys_with_its_three_inputs_and_reports_agreement(speech, tmp_path):
    """Fed from recorded speech with the real recurrent state; every output compared, the
    share of frames making fp32's speech call reported, a miss of the target flagged."""
    calib, held_out = speech
    code = main(["deploy", str(zoo.silero_vad_16k_onnx_path()), "--calib", calib, "--eval", held_out,
                 "--target", "local", "--min-agreement", "95", "-o", str(tmp_path / "out"),
                 "--json", str(tmp_path / "r.json"), *QUICK])
    records = records_of(tmp_path / "r.json")
    by_precision = {r["precision"]: r for r in records}
    assert by_precision["fp32"]["agreement"]["decision"] == 100.0
    quantized = int8_records(records)
    assert quantized, "an int8 artifact was built"
    for record in quantized:
        assert [i["name"] for i in record["manifest"]["inputs_fed"]] == ["input", "state", "sr"]
        agreement = record["agreement"]
        assert len(agreement["outputs"]) == 2  # speech probability and the next state
        assert "QuantizeLinear" in record["manifest"]["ops"]
        met = agreement["decision"] >= 95.0 and agreement["cosine"] >= 0.99
        assert met == record["manifest"]["search"]["met"]
        if not met:
            assert code == 3  # --min-agreement makes a miss fail
            assert any(f["kind"] == "below-target" and "same call" in f["text"]
                       for f in record["flags"]), record["flags"]


def test_an_int8_that_would_quantize_nothing_is_refused_with_a_sentence(speech, tmp_path,
                                                                       caplog):
    """silero_vad.onnx keeps every layer inside If subgraphs: its "int8" would be the
    float model under another name, so it is not built, and the fp32 artifact goes on."""
    calib, held_out = speech
    code = main(["deploy", str(zoo.silero_vad_onnx_path()), "--calib", calib,
                 "--eval", held_out, "--target", "local", "-o", str(tmp_path / "out"),
                 "--json", str(tmp_path / "r.json"), *QUICK])
    records = records_of(tmp_path / "r.json")
    assert code == 0
    assert [r["precision"] for r in records] == ["fp32"]
    assert "quantization changed nothing" in caplog.text
    assert not list((tmp_path / "out").glob("*.int8.onnx"))


def test_efficientnet_lite0_is_planned_as_a_conv_network_and_int8_meets_the_target(
        tmp_path):
    from edgecomp.model.facts import model_facts
    from edgecomp.model.load import load_model

    source = load_model("examples.zoo.models:efficientnet_lite0")
    facts = model_facts(source.module, source.example_inputs, name=source.name)
    assert facts.conv_share > 0.9 and "depthwise_conv2d" in facts.op_types
    assert not [op for op in facts.op_types if op.startswith("other:")], facts.op_types
    calib = write(tmp_path / "calib.npz", zoo_data.photos("calib", 32, 0))
    held_out = write(tmp_path / "eval.npz", zoo_data.photos("eval", 24, 0))
    code = main(["deploy", "examples.zoo.models:efficientnet_lite0", "--calib", calib,
                 "--eval", held_out, "--target", "local", "--format", "onnx",
                 "-o", str(tmp_path / "out"), "--json", str(tmp_path / "r.json"), *QUICK])
    records = records_of(tmp_path / "r.json")
    assert code in (0, 3)
    (int8,) = int8_records(records)
    assert int8["precision"] == "int8"  # static: dynamic int8 runs convolutions slowly
    assert int8["p50_ratio"] is not None  # timed interleaved with its fp32 twin
    search = int8["manifest"]["search"]
    if search["met"]:
        assert int8["agreement"]["cosine"] >= 0.99
    else:
        assert any(f["kind"] == "below-target" and "below the agreement target" in f["text"]
                   for f in int8["flags"])


def test_a_prebuilt_mediapipe_tflite_benches_and_agrees_with_itself(tmp_path):
    model = zoo.mediapipe_tflite("face_detection_short_range")
    from ai_edge_litert.interpreter import Interpreter

    (detail,) = Interpreter(model_path=str(model)).get_input_details()
    rng = np.random.default_rng(0)
    frames = rng.random((4, *detail["shape"][1:]), dtype=np.float32)
    held_out = write(tmp_path / "frames.npz", {"x": frames})
    code = main(["bench", str(model), "--target", "local", "--eval", held_out,
                 "--reference", str(model), "--json", str(tmp_path / "r.json"), *QUICK])
    (record,) = records_of(tmp_path / "r.json")
    assert code == 0, record["error"]
    assert record["latency_ms"]["count"] >= 20
    assert record["agreement"]["cosine"] == pytest.approx(1.0)
    assert len(record["manifest"]["outputs"]) == 2  # boxes and scores
