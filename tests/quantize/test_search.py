"""Accuracy-aware int8: candidate order, stopping rule, what is kept, and the flags."""

from __future__ import annotations

import json

import pytest

from edgecomp.export.base import Artifact, ExportRequest
from edgecomp.results.record import Agreement, Latency, ResultRecord
from edgecomp.quantize.search import AgreementTarget, flag_records, search_int8
from edgecomp.model.signature import InputSpec
from edgecomp.results.agreement import Verification
from edgecomp.vocab import CalibrationMethod, Format, Precision


class FakeExporter:
    """Writes a small file per candidate; its 'quality' comes from a table by options."""

    format = Format.ONNX
    precisions = frozenset({Precision.FP32, Precision.INT8, Precision.DYNAMIC_INT8})

    def __init__(self):
        self.requests: list[ExportRequest] = []

    def export(self, request: ExportRequest) -> Artifact:
        self.requests.append(request)
        request.out_dir.mkdir(parents=True, exist_ok=True)
        path = request.out_dir / f"m.{request.precision.value}.onnx"
        path.write_bytes(b"x" * (10 + len(self.requests)))
        manifest = {"sha256": str(len(self.requests)), "precision": request.precision.value,
                    "float_layers": [f"n{k}" for k in range(request.float_layers)]}
        artifact = Artifact(path=path, format="onnx", precision=request.precision,
                            manifest=manifest)
        artifact.manifest_path.write_text(json.dumps(manifest))
        return artifact


def check_by(scores):
    """A check whose cosine follows the candidate: (method, float_layers, precision)."""

    def check(artifact: Artifact) -> Verification:
        cosine = scores(artifact)
        return Verification(None, None, None, Agreement(cosine=cosine, max_abs_err=0.1,
                                                        decision=cosine * 100), 10)
    return check


def request(tmp_path) -> ExportRequest:
    return ExportRequest(module=None, inputs=(InputSpec("x", (1, 4)),), model_name="m",
                         source_sha256="s", precision=Precision.INT8, out_dir=tmp_path / "out")


def test_the_first_candidate_meeting_the_target_is_kept_and_the_rest_removed(tmp_path):
    exporter = FakeExporter()
    cosines = iter([0.95, 0.991, 0.999])
    artifact, tried = search_int8(request(tmp_path), exporter,
                                  check_by(lambda a: next(cosines)), AgreementTarget())
    assert [t.options["calibration_method"] for t in tried] == ["minmax", "percentile"]
    assert [t.met for t in tried] == [False, True]
    assert artifact.path == tmp_path / "out" / "m.int8.onnx" and artifact.path.is_file()
    saved = json.loads(artifact.manifest_path.read_text())
    assert saved["search"]["kept"] == tried[1].name and saved["search"]["met"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.int8.onnx",
                                                                    "m.int8.onnx.json"]


def test_mixed_precision_follows_the_best_calibration_and_dynamic_only_when_allowed(tmp_path):
    def score(artifact):
        layers = len(artifact.manifest["float_layers"])
        method = exporter.requests[-1].calibration_method
        return {CalibrationMethod.MINMAX: 0.90, CalibrationMethod.PERCENTILE: 0.93,
                CalibrationMethod.ENTROPY: 0.91}[method] + layers * 0.001

    exporter = FakeExporter()
    artifact, tried = search_int8(request(tmp_path), exporter, check_by(score),
                                  AgreementTarget(), allow_dynamic=False)
    mixed = tried[3:]
    assert [t.options["float_layers"] for t in mixed] == [1, 3, 6, 12]
    assert {t.options["calibration_method"] for t in mixed} == {"percentile"}
    assert all(t.options["precision"] == "int8" for t in tried)  # no dynamic for convs
    assert not any(t.met for t in tried)
    best = max(tried, key=lambda t: t.score())
    assert json.loads(artifact.manifest_path.read_text())["search"]["kept"] == best.name

    exporter = FakeExporter()
    _, tried = search_int8(request(tmp_path / "b"), exporter, check_by(score),
                           AgreementTarget(), allow_dynamic=True)
    assert tried[-1].options["precision"] == "dynamic-int8"


def test_a_candidate_that_fails_to_build_is_reported_not_fatal(tmp_path):
    from edgecomp.errors import ExportError

    class Flaky(FakeExporter):
        def export(self, request):
            if request.calibration_method == CalibrationMethod.MINMAX:
                raise ExportError("no ranges")
            return super().export(request)

    artifact, tried = search_int8(request(tmp_path), Flaky(), check_by(lambda a: 0.995),
                                  AgreementTarget())
    assert tried[0].error == "no ranges" and tried[1].met


def record(**changes) -> ResultRecord:
    base = dict(model="m", technique="none", target="local", format="onnx", precision="int8",
                size_bytes=1, accuracy=None, float_accuracy=None, accuracy_delta=None,
                agreement=Agreement(cosine=0.999, max_abs_err=0.1, decision=100.0),
                latency_ms=Latency(p50=1, p90=1, p99=1, mean=1, std=0, count=5),
                load_ms=1, first_inference_ms=1, peak_rss_mb=1, rss_growth_mb=1,
                runtime="onnxruntime 1.32", threads=1, transport="local", device={},
                artifact_sha256="a", artifact_name="m.int8.onnx", source_sha256="s",
                calib_sha256=None, calib_source=None, manifest={})
    base.update(changes)
    return ResultRecord(**base)


@pytest.mark.parametrize("changes, expected", [
    ({}, []),
    ({"agreement": Agreement(cosine=0.95, max_abs_err=1.0)}, ["below the agreement target"]),
    ({"accuracy_delta": -2.5, "accuracy": 90.0, "float_accuracy": 92.5},
     ["below the agreement target"]),
    ({"p50_ratio": 1.4}, ["slower than fp32"]),
    ({"device": {"fallback_ops": {"GATHER": 2}, "delegate": "xnnpack"}},
     ["no delegate took any node"]),
    ({"precision": "fp32", "technique": "structured-50",
      "agreement": Agreement(cosine=0.12, max_abs_err=9.0)}, ["below the agreement target"]),
    ({"precision": "fp32", "agreement": Agreement(cosine=0.12, max_abs_err=9.0)}, []),
])
def test_flags_say_what_needs_attention(changes, expected):
    (flagged,) = flag_records([record(**changes)], AgreementTarget())
    assert len(flagged.flags) == len(expected)
    for flag, start in zip(flagged.flags, expected):
        assert flag.startswith(start), flag


def test_a_decision_target_is_checked_when_set():
    low = record(agreement=Agreement(cosine=0.995, max_abs_err=0.1, decision=91.0))
    assert flag_records([low], AgreementTarget())[0].flags == []
    (flagged,) = flag_records([low], AgreementTarget(min_decision=95))
    assert "same call 91.0 %" in flagged.flags[0]
