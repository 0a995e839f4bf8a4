"""Deploying the same model to a second board reuses the artifacts built for the first."""

from __future__ import annotations

import logging
import time

import pytest

from edgecomp.pipeline.deploy import deploy
from edgecomp.pipeline.request import DeployRequest, MeasureChoices

pytestmark = pytest.mark.slow

QUICK = MeasureChoices(runs=10, seconds=0.1, warmup_runs=1, warmup_seconds=0.0)


def exported(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(("exporting", "int8 candidate"))]


def test_a_second_board_reuses_the_artifacts_and_verifies_them(board, artifact_cache, tmp_path,
                                                                caplog):
    caplog.set_level(logging.INFO, logger="edgecomp")
    started = time.perf_counter()
    first = deploy(DeployRequest(target="local", measure=QUICK, out_dir=tmp_path / "local",
                                 record=False))
    first_s = time.perf_counter() - started
    assert exported(caplog)

    caplog.clear()
    started = time.perf_counter()
    second = deploy(DeployRequest(target=board.name, measure=QUICK, out_dir=tmp_path / "board",
                                  record=False))
    second_s = time.perf_counter() - started
    assert exported(caplog) == []  # nothing exported, no int8 candidate searched
    reuse = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reusing")]
    assert len(reuse) == 1 and "reusing 4 artifact(s) built" in reuse[0]
    assert "for local" in reuse[0] and "--rebuild" in reuse[0]
    print(f"demo: first deploy (local) {first_s:.1f} s, second ({board.name}) {second_s:.1f} s")

    def by_artifact(records):
        return {(r.format, r.precision): r for r in records}

    local, remote = by_artifact(first), by_artifact(second)
    assert local.keys() == remote.keys() == {("onnx", "fp32"), ("onnx", "int8"),
                                             ("tflite", "fp32"), ("tflite", "int8")}
    for key, record in remote.items():
        assert record.ok and record.target == board.name
        assert record.artifact_sha256 == local[key].artifact_sha256
        assert (tmp_path / "board" / record.artifact_name).is_file()
        # Verified and timed on this board: the verifications made on `local` are not its.
        assert record.accuracy is not None and record.agreement is not None
        assert record.latency_ms.p50 > 0
        assert record.manifest == local[key].manifest  # the int8 search's record too
        assert record.plan.value("format") == record.format
    assert remote[("onnx", "int8")].manifest.search.kept
    assert remote[("onnx", "int8")].plan.value("activation_dtype") == "uint8"
    assert remote[("onnx", "int8")].manifest.activation_dtype == "uint8"
