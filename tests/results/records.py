"""Result records for the store's tests, with reproducible raw samples."""

from __future__ import annotations

import numpy as np

from edgecomp.results.record import Agreement, Latency, ResultRecord


def record(model: str = "m", *, samples: int = 50, seed: int = 0,
           error: str | None = None) -> ResultRecord:
    """A measured record of `model` with `samples` raw samples drawn from `seed` (none and no
    latency for a failed one, given its `error`)."""
    values = (0.05 + np.random.default_rng(seed).gamma(2.0, 0.003, samples)).tolist()
    return ResultRecord(
        model=model, technique="none", target="local", format="tflite", precision="fp32",
        size_bytes=1000, accuracy=98.0, float_accuracy=98.5, accuracy_delta=-0.5,
        agreement=Agreement(0.999, 0.01),
        latency_ms=None if error else Latency(0.05, 0.06, 0.07, 0.05, 0.01, samples),
        load_ms=1.0, first_inference_ms=2.0, peak_rss_mb=50.0, rss_growth_mb=5.0,
        runtime="ai_edge_litert 2.3.0", threads=1, transport="local", device={"cores": 2},
        artifact_sha256="sha", artifact_name="m.fp32.tflite", source_sha256="src",
        calib_sha256=None, calib_source=None, manifest={},
        samples_ms=[] if error else values, error=error,
        created_at="2026-01-01T00:00:00+00:00")


def as_recorded(records: list[ResultRecord]) -> list[ResultRecord]:
    """Records read back from the store without the run id the store gave them, to compare
    with what was recorded."""
    import dataclasses

    return [dataclasses.replace(r, run_id=None) for r in records]
