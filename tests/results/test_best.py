"""The best artifact per model and board: the fastest on the fast-and-accurate Pareto front
that stays close to the float model, the reason in one sentence, the speedup over fp32."""

from __future__ import annotations

import dataclasses

from edgecomp.results.best import best_artifacts
from edgecomp.results.record import Agreement, Latency
from tests.results.records import manifest, record


def made(technique="none", precision="fp32", *, p50, accuracy=75.0, model="m",
         target="pi4", **changes):
    """A measured record of `model` on `target` whose float model has 75 % top-1."""
    base = record(model)
    return dataclasses.replace(
        base, technique=technique, precision=precision, target=target, accuracy=accuracy,
        float_accuracy=75.0, latency_ms=Latency(p50, p50 * 1.2, p50 * 1.5, p50, 0.01, 50),
        manifest=manifest(model=model, precision=precision), **changes)


def test_the_fastest_artifact_within_a_point_of_the_float_model_wins():
    records = [made(p50=10.0), made("none", "fp16", p50=8.0, accuracy=74.9),
               made("ptq", "int8", p50=4.0, accuracy=74.2),
               made("prune-50+ptq", "int8", p50=2.5, accuracy=70.0),  # faster, 5 points off
               made("prune-30", p50=9.0, accuracy=73.0)]  # beaten by the int8 one
    (best,) = best_artifacts(records)
    assert (best.model, best.target) == ("m", "pi4")
    assert best.record.technique == "ptq" and best.close and best.compared == 5
    assert best.speedup == 2.5
    assert best.reason == ("the fastest artifact within 1 point of the float model's top-1 "
                           "(75.00 %); 2.5× faster than fp32.")
    assert [r.technique for r in best.front] == ["prune-50+ptq", "ptq", "none", "none"]
    assert [r.precision for r in best.front] == ["int8", "int8", "fp16", "fp32"]


def test_none_close_enough_gives_the_most_accurate_and_says_so():
    records = [made("a", "int8", p50=2.0, accuracy=60.0),
               made("b", "int8", p50=3.0, accuracy=70.0),
               made("c", "int8", p50=4.0, accuracy=65.0)]
    (best,) = best_artifacts(records)
    assert best.record.technique == "b" and not best.close
    assert best.reason.startswith("no artifact is within 1 point of the float model's top-1 "
                                  "(75.00 %); the most accurate one")
    assert "no fp32 tflite result here" in best.reason  # nothing to take a speedup from


def test_each_model_and_board_has_its_own_best_and_the_newest_result_counts():
    records = [made(p50=10.0), made("ptq", "int8", p50=4.0, accuracy=74.5),
               made(p50=30.0, target="pi3"), made("ptq", "int8", p50=35.0, target="pi3"),
               made(p50=5.0, model="n"),
               # measured again later, now too inaccurate: the older result no longer counts
               made("ptq", "int8", p50=1.0, model="n", accuracy=80.0,
                    created_at="2026-01-01T00:00:00+00:00"),
               made("ptq", "int8", p50=1.0, model="n", accuracy=60.0,
                    created_at="2026-02-01T00:00:00+00:00")]
    found = {(b.model, b.target): b for b in best_artifacts(records)}
    assert list(found) == [("m", "pi3"), ("m", "pi4"), ("n", "pi4")]
    assert found[("m", "pi4")].record.technique == "ptq"
    assert found[("m", "pi3")].reason == ("the fastest artifact within 1 point of the float "
                                          "model's top-1 (75.00 %): the fp32 artifact itself "
                                          "(nothing compressed beats it).")
    assert found[("n", "pi4")].record.technique == "none"
    assert found[("n", "pi4")].compared == 2


def test_agreement_without_labels_and_the_interleaved_speedup():
    records = [made(p50=10.0, accuracy=None, agreement=Agreement(1.0, 0.0, decision=100.0)),
               made("ptq", "int8", p50=2.0, accuracy=None, p50_ratio=0.25,
                    agreement=Agreement(0.995, 0.1, decision=99.4)),
               made("dyn", "int8", p50=1.0, accuracy=None,
                    agreement=Agreement(0.98, 0.1, decision=97.0))]
    (best,) = best_artifacts(records)
    assert best.quality.key == "decision" and best.record.technique == "ptq"
    assert best.speedup == 4.0  # from the interleaved timing, not 10 / 2
    assert best.reason == ("the fastest artifact making the float model's call on ≥ 99 % "
                           "of samples; 4.0× faster than fp32.")
    cosine_only = [dataclasses.replace(r, agreement=Agreement(r.agreement.cosine, 0.1))
                   for r in records]
    (best,) = best_artifacts(cosine_only)
    assert best.quality.key == "cosine" and best.record.technique == "ptq"
    assert "with output cosine ≥ 0.99 to the float model" in best.reason


def test_without_quality_the_fastest_and_failures_are_left_out():
    records = [made(p50=10.0, accuracy=None, agreement=None),
               made("ptq", "int8", p50=5.0, accuracy=None, agreement=None),
               dataclasses.replace(made("fast", "int8", p50=1.0), error="lost the board",
                                   latency_ms=None)]
    (best,) = best_artifacts(records)
    assert best.quality is None and best.front == () and best.compared == 2
    assert best.reason == ("the fastest artifact; nothing measured its accuracy or agreement; "
                           "2.0× faster than fp32.")
    assert best_artifacts([records[-1]]) == []
