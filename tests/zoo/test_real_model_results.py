"""Tags, compare --baseline, gate and report on a real model: mediapipe's face detector as
shipped, fed crops of real photos, recorded in SQLite and in a real PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgecomp.cli import main
from examples.zoo import data as zoo_data
from examples.zoo import models as zoo
from tests.browser import distinct_colours, offline_page
from tests.tables import table_rows

pytestmark = pytest.mark.slow

# One thread: the timing of a two-core machine shared with other processes stays steadier.
MEASURE = ["--target", "local", "--threads", "1", "--runs", "60", "--seconds", "0.5",
           "--warmup-seconds", "0.1"]


def photo_frames(size: int, count: int) -> np.ndarray:
    """Real photos (scikit-image, scikit-learn) resized to the detector's square input,
    scaled to [-1, 1] as mediapipe's graphs expect, NHWC."""
    frames = []
    for name in zoo_data.PHOTO_NAMES[:count]:
        image = Image.fromarray(zoo_data.photo(name)).resize((size, size),
                                                            Image.Resampling.BILINEAR)
        frames.append(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
    return np.stack(frames)


def test_a_real_model_is_tagged_compared_gated_and_reported(results_db, tmp_path, capsys):
    model = zoo.mediapipe_tflite("face_detection_short_range")
    from ai_edge_litert.interpreter import Interpreter

    (detail,) = Interpreter(model_path=str(model)).get_input_details()
    frames = tmp_path / "photos.npz"
    np.savez(frames, x=photo_frames(int(detail["shape"][1]), 6))

    def bench(tag: str) -> None:
        assert main(["bench", str(model), "--eval", str(frames), "--reference", str(model),
                     "--tag", tag, *MEASURE]) == 0

    # The same artifact measured twice passes the gate; on a shared machine either run may
    # be too unstable to judge (exit 2: measure both again), never a regression (exit 1).
    # This test is about the flow (tags, gate, compare, report) on a real model; the
    # stability limits themselves are tested in tests/results. Under the full suite's own
    # load a 1 ms model's tenths (50 ms each) drift past the default 10 % often enough to
    # exhaust three rounds, so the drift limit is 20 % here.
    config = tmp_path / "gate.toml"
    config.write_text("[stability]\nmax_drift = 0.20\n")
    for round_ in range(3):
        baseline, attempt = f"v1-{round_}", f"v2-{round_}"
        bench(baseline)
        bench(attempt)
        out = tmp_path / f"{attempt}.json"
        code = main(["gate", "--baseline", baseline, "--tag", attempt, "--json", str(out),
                     "--config", str(config),
                     "--junit", str(tmp_path / "junit.xml")])
        assert code in (0, 2), out.read_text()
        if code == 0:
            break
    assert code == 0
    verdicts = {check["name"]: check["verdict"]
                for check in json.loads(out.read_text())["checks"]}
    assert verdicts["latency p50"] == "pass" and verdicts["cosine"] == "pass", verdicts
    capsys.readouterr()

    assert main(["compare", "--baseline", baseline, "--tag", attempt, "--wide"]) == 0
    shown = capsys.readouterr().out
    rows = table_rows(shown)
    assert any("face_detection_short_range" in row["model"].replace(" ", "") for row in rows)
    cells = next(row for row in rows if row["format"] == "tflite")
    assert cells["size vs base"] == "+0.0%", cells  # the same file: no size change
    assert cells["p50 vs base"].endswith("%") and cells["p90 vs base"].endswith("%"), cells

    page = tmp_path / "report.html"
    assert main(["report", "-o", str(page)]) == 0
    assert "face_detection_short_range" in page.read_text()
    with offline_page(page) as visit:
        assert visit.blocked == [] and visit.console_errors == [] and visit.page_errors == []
        charts = visit.charts()
        assert charts and all(chart["svg"] and chart["drawn"] for chart in charts), charts
        for chart in charts:
            _, chromatic = distinct_colours(visit.page.locator(f"#{chart['id']}").screenshot())
            assert chromatic > 0, chart["id"]
        visit.page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
