"""Accuracy-aware int8: candidate order, stopping rule, what is kept, and the flags."""

from __future__ import annotations

import json

from edgecomp.export.base import Artifact, ExportRequest
from edgecomp.quantize.search import search_int8
from edgecomp.quantize.target import AgreementTarget
from edgecomp.export import Int8Options
from edgecomp.model.signature import InputSpec
from edgecomp.results.agreement import Verification
from edgecomp.results.record import Agreement
from edgecomp.vocab import CalibrationMethod, Format, Precision
from tests.results.records import manifest


class FakeExporter:
    """Writes a small file per candidate; its 'quality' comes from a table by options."""

    format = Format.ONNX
    precisions = frozenset({Precision.FP32, Precision.INT8, Precision.DYNAMIC_INT8})
    int8_options = Int8Options(calibrations=(CalibrationMethod.MINMAX,
                                             CalibrationMethod.PERCENTILE,
                                             CalibrationMethod.ENTROPY), float_layers=True)

    def __init__(self):
        self.requests: list[ExportRequest] = []

    def export(self, request: ExportRequest) -> Artifact:
        self.requests.append(request)
        request.out_dir.mkdir(parents=True, exist_ok=True)
        path = request.out_dir / f"m.{request.precision.value}.onnx"
        path.write_bytes(b"x" * (10 + len(self.requests)))
        made = manifest(file=path.name, format="onnx", precision=request.precision,
                        sha256=f"{len(self.requests):064x}",
                        float_layers=tuple(f"n{k}" for k in range(request.float_layers)))
        artifact = Artifact(path=path, manifest=made)
        artifact.manifest_path.write_text(json.dumps(made.to_json()))
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


def test_the_search_reports_each_candidate_and_its_count_so_far(tmp_path):
    """A phase per candidate, and the search's own over the candidates planned so far (the
    progress display's time left follows their pace)."""
    seen = []
    cosines = iter([0.95, 0.999])
    search_int8(request(tmp_path), FakeExporter(), check_by(lambda a: next(cosines)),
                AgreementTarget(), progress=lambda *step: seen.append(step))
    search = [step for step in seen if step[0] == "int8 search (onnx)"]
    assert search == [("int8 search (onnx)", 0, 3), ("int8 search (onnx)", 1, 3),
                      ("int8 search (onnx)", 2, 2)]  # the second met the target: done
    candidates = [step for step in seen if step[0].startswith("int8 candidate: ")]
    assert [step[1:] for step in candidates] == [(0, 1), (1, 1), (0, 1), (1, 1)]
    assert seen.index(search[1]) > seen.index(candidates[1])  # counted once judged


def test_mixed_precision_follows_the_best_calibration_and_dynamic_only_when_allowed(tmp_path):
    def score(artifact):
        layers = len(artifact.manifest.float_layers)
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
