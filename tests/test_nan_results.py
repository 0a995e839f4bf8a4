"""No NaN is ever written as a result: a model whose outputs are not numbers gets a failed
record with a sentence, and every JSON edgecomp writes is strict JSON."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from edgecomp.atomic import strict_json
from edgecomp.cli import main
from edgecomp.model.data import make_dataset
from edgecomp.results.agreement import compare_outputs

# Finite on half of the digits' pixel range, NaN on the other: log of a negative number.
FACTORY = textwrap.dedent("""
    import torch
    from torch import nn

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            return torch.log(self.head(x) - 0.5)

    def make_broken():
        torch.manual_seed(0)
        return Broken().eval()
""")


def strict(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")

    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_no_number_as_null():
    assert strict(strict_json({"a": [1.0, float("nan"), float("inf")], "b": -0.0})) == \
        {"a": [1.0, None, None], "b": -0.0}


def test_non_finite_outputs_cannot_be_compared():
    data = make_dataset(np.zeros((4, 3), np.float32), None, source="t")
    good = np.ones((4, 3), np.float32)
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="the artifact gave NaN or infinite values in output 0 "
                                         "on 1 of 4 samples"):
        compare_outputs(good, bad, data)
    with pytest.raises(ValueError, match="the float model gave NaN"):
        compare_outputs(bad, good, data)


@pytest.mark.slow
def test_a_model_with_nan_outputs_gets_failed_records_not_nan(tmp_path, monkeypatch,
                                                              digits_npz, capsys):
    (tmp_path / "broken_models.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    calib, val = digits_npz
    try:
        code = main(["deploy", "broken_models:make_broken", "--input-shape", "1,1,8,8",
                     "--calib", str(calib), "--eval", str(val), "--target", "local",
                     "--format", "onnx", "--precision", "fp32", "--runs", "5", "--seconds", "0",
                     "--warmup-seconds", "0", "-o", "out", "--json", "r.json"])
    finally:
        sys.modules.pop("broken_models", None)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1
    assert "Traceback" not in err and "unexpected" not in err
    results = strict((tmp_path / "r.json").read_text())
    assert results and all(r["latency_ms"] is None for r in results)
    assert all("NaN or infinite values" in r["error"] for r in results)
    manifest = next((tmp_path / "out").glob("*.json"))
    strict(manifest.read_text())
