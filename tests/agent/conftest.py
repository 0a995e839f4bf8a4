"""The agent as a board runs it: its zipapp in a subprocess printing one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecomp.remote.agent_bundle import agent_pyz


def run_agent(*args, env=None, timeout=120, cwd=None) -> tuple[int, dict, str]:
    """(exit code, the one JSON object on stdout, stderr) of the agent zipapp."""
    result = subprocess.run([sys.executable, str(agent_pyz()), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=cwd,
                            env={**os.environ, **(env or {})})
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON line, got: {result.stdout!r}"
    return result.returncode, json.loads(lines[0]), result.stderr


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def tflite_model(tmp_path_factory) -> Path:
    import litert_torch
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU()).eval()
    path = tmp_path_factory.mktemp("agent") / "tiny.tflite"
    litert_torch.convert(module, (torch.zeros(1, 16),)).export(str(path))
    return path


@pytest.fixture(scope="session")
def agent():
    """run_agent, for tests: agent("measure", model, "--runs", 5) -> (code, report, stderr)."""
    return run_agent
