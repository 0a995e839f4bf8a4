"""Real models on the simulated board over SSH: a prebuilt mediapipe .tflite and silero-vad's
three inputs (audio, recurrent state, an int64 sample rate) fed from recorded speech."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecomp.cli import main
from examples.zoo import data as zoo_data
from examples.zoo import models as zoo

pytestmark = pytest.mark.slow

QUICK = ["--runs", "20", "--seconds", "0.2", "--warmup-seconds", "0.05", "--no-record"]


def test_a_prebuilt_mediapipe_tflite_benches_on_the_board_like_here(board, tmp_path):
    model = zoo.mediapipe_tflite("face_detection_short_range")
    frames = np.random.default_rng(0).random((3, 128, 128, 3), dtype=np.float32)
    np.savez(tmp_path / "frames.npz", x=frames)
    results = {}
    for target in ("local", board.name):
        code = main(["bench", str(model), "--target", target, "--eval",
                     str(tmp_path / "frames.npz"), "--reference", str(model),
                     "--json", str(tmp_path / f"{target}.json"), *QUICK])
        (results[target],) = json.loads((tmp_path / f"{target}.json").read_text())
        assert code == 0, results[target]["error"]
    here, there = results["local"], results[board.name]
    assert there["transport"] == "ssh" and there["latency_ms"]["count"] >= 20
    assert there["agreement"]["cosine"] == pytest.approx(1.0)
    assert there["artifact_sha256"] == here["artifact_sha256"]


def test_silero_vad_three_inputs_run_on_the_board(board, tmp_path):
    np.savez(tmp_path / "calib.npz", **zoo_data.speech("calib", 32, 0))
    np.savez(tmp_path / "eval.npz", **zoo_data.speech("eval", 24, 0))
    path = zoo.silero_vad_16k_onnx_path()
    code = main(["deploy", str(path), "--calib", str(tmp_path / "calib.npz"),
                 "--eval", str(tmp_path / "eval.npz"), "--target", board.name,
                 "--set", "precision=fp32", "-o", str(tmp_path / "out"),
                 "--json", str(tmp_path / "r.json"), *QUICK])
    (record,) = json.loads((tmp_path / "r.json").read_text())
    assert code == 0, record["error"]
    assert record["transport"] == "ssh"
    assert [i["dtype"] for i in record["manifest"]["inputs_fed"]] == ["float32", "float32",
                                                                     "int64"]
    # The board's runtime computes the fp32 artifact exactly like the source model here.
    assert record["agreement"]["decision"] == 100.0
    assert record["agreement"]["outputs"][1]["max_abs_err"] < 1e-4
