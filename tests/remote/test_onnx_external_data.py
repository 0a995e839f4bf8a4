"""An ONNX model that keeps its weights in external data files is measured on a board: the
files go up with the model, into the board's cache, hashed and reused like any upload
(the real simulated board, tools/sim-board)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecomp.cli import main
from edgecomp.hardware.targets import get_target
from edgecomp.pipeline import agent
from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.remote.local import LocalTransport
from edgecomp.remote.ssh import SshTransport

pytestmark = pytest.mark.slow

QUICK = ["--runs", "5", "--seconds", "0.1", "--warmup-runs", "1", "--warmup-seconds", "0"]


def external_model(folder: Path, seed: int) -> Path:
    """relu(x @ W) with W in `weights.bin` beside the model (the same name for every seed)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True)
    weights = np.random.default_rng(seed).standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "external", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
        [numpy_helper.from_array(weights, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (folder / "weights.bin").stat().st_size == weights.nbytes
    return path


def test_bench_measures_an_onnx_model_with_external_data(board, tmp_path, capsys):
    model = external_model(tmp_path / "m", seed=1)
    report = tmp_path / "bench.json"
    code = main(["bench", str(model), "--target", board.name, *QUICK, "--no-record",
                 "--json", str(report)])
    err = capsys.readouterr().err
    assert code == 0, err
    result, = json.loads(report.read_text())
    assert result["error"] is None and result["latency_ms"]["count"] >= 5, result


def test_external_data_is_cached_hashed_and_kept_apart_per_model(board, tmp_path):
    target = get_target(board.name)
    first = external_model(tmp_path / "a", seed=1)
    second = external_model(tmp_path / "b", seed=2)  # another weights.bin, the same name
    inputs = {"in0": np.random.default_rng(0).standard_normal((4, 1, 64)).astype(np.float32)}
    with LocalTransport() as here:
        expected = [agent.outputs(here, m, inputs, MeasureOptions())[0][0]
                    for m in (first, second)]
    with SshTransport(target) as ssh:
        for model, want in zip((first, second), expected):
            got = agent.outputs(ssh, model, inputs, MeasureOptions())[0][0]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    cached = sorted(board.workdir.glob("cache/*/weights.bin"))
    assert len(cached) == 2, cached  # one folder per model

    with SshTransport(target) as ssh:  # reused: nothing goes up again
        agent.measure(ssh, first, MeasureOptions(runs=3, seconds=0, warmup_seconds=0))
        assert ssh.files_sent == 0

    mine = next(path for path in cached
                if path.read_bytes() == (first.parent / "weights.bin").read_bytes())
    mine.write_bytes(bytes(mine.stat().st_size))  # damaged on the board, same size
    with SshTransport(target) as ssh:
        got = agent.outputs(ssh, first, inputs, MeasureOptions())[0][0]
        assert ssh.files_sent >= 1  # hashed, found damaged, uploaded again
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-6)
    assert mine.read_bytes() == (first.parent / "weights.bin").read_bytes()
