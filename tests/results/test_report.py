"""`edgecomp report`: one HTML file that opens offline, draws every chart, escapes every name,
marks the Pareto fronts and says why energy is missing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from html.parser import HTMLParser

import pytest

from edgecomp.cli import main
from edgecomp.results.charts import AXES, QUALITIES, pareto_front, quality_chart, quality_of
from edgecomp.agent.protocol import OpProfile, OpTime, PowerReport
from edgecomp.hardware.plan import Decision, PlanRecord
from edgecomp.quantize.target import AgreementTarget, SearchLog, Tried
from edgecomp.results.execution import summarize_profile
from edgecomp.results.gate import GateReport
from edgecomp.results.record import Agreement, Flag, FlagKind, Latency
from edgecomp.results.verdicts import Check, GateConfig, Verdict
from edgecomp.results.report import build_report, entries, write_report
from edgecomp.results.store import Store
from tests.browser import distinct_colours, offline_page
from tests.results.records import device, manifest, record, state

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(2)>"
# plotly itself reads <a>, <b>, <br> ... in labels as markup.
HOSTILE_LINK = '<a href="javascript:alert(3)"><b>click</b></a>'


class _Text(HTMLParser):
    """The page's text outside <script> and <style>, and the ids of its plotly charts."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.charts: list[str] = []
        self.scripts = 0
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
            self.scripts += tag == "script"
        if tag == "div" and "plotly-graph-div" in (attrs.get("class") or ""):
            self.charts.append(attrs["id"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page_text(html: str) -> tuple[str, list[str]]:
    """The visible text (as one string) and the chart ids of a report."""
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).split()), parser.charts


def measured(model="m", *, p50=0.05, accuracy=98.0, size=1000, seed=0, **changes):
    """A stored-looking record with the given p50, accuracy and size."""
    base = record(model, seed=seed)
    return dataclasses.replace(base, latency_ms=Latency(p50, p50 * 1.2, p50 * 1.5, p50, 0.01, 50),
                               accuracy=accuracy, size_bytes=size, **changes)


# --- Pareto fronts --------------------------------------------------------------------------


def test_pareto_front_keeps_exactly_the_points_nothing_beats():
    points = {"a": (1, 90), "b": (2, 95), "c": (3, 94), "d": (4, 99), "e": (2, 95),
              "f": (1, 85), "g": (5, 99), "h": (0.5, 80)}
    names = list(points)
    front = {names[i] for i in pareto_front(list(points.values()))}
    # c is beaten by b, f by a (same x, lower y), g by d (same y, higher x); e ties b.
    assert front == {"h", "a", "b", "e", "d"}
    assert pareto_front([]) == [] and pareto_front([(3.0, 1.0)]) == [0]


def test_latency_fronts_are_per_target_and_size_fronts_per_model():
    made = [measured(technique=t, p50=p50, accuracy=acc, size=size, target=target)
            for t, p50, acc, size, target in [
                ("fast", 1.0, 90.0, 4000, "local"), ("good", 2.0, 95.0, 3000, "local"),
                ("slow", 3.0, 94.0, 2000, "local"), ("best", 4.0, 99.0, 5000, "local"),
                # Slower than all of the above, but alone on its board: its own front.
                ("board", 9.0, 80.0, 9000, "pi4")]]
    shown = entries(made)
    by_latency = dict(quality_chart(shown, QUALITIES[0], AXES[0])[1])
    assert [e.record.technique for e in by_latency["m @ local"]] == ["fast", "good", "best"]
    assert [e.record.technique for e in by_latency["m @ pi4"]] == ["board"]
    fig, by_size = quality_chart(shown, QUALITIES[0], AXES[1])
    assert [e.record.technique for e in dict(by_size)["m"]] == ["slow", "good", "best"]
    front_line = [t for t in fig.data if t.name.startswith("Pareto front")]
    assert len(front_line) == 1 and list(front_line[0].x) == [2000 / 1024, 3000 / 1024,
                                                              5000 / 1024]
    # The page names the same fronts.
    text, _ = page_text(build_report(made))
    assert "Pareto front (fast and accurate), m @ pi4: m · tflite fp32 · board @ pi4" in text


def test_sizes_are_what_is_shipped_and_times_read_at_a_glance():
    """A recipe's Huffman archive is the size charted and shown (the file beside it), and
    latencies print in the tables' units (µs below 1 ms)."""
    from edgecomp.results.record import PassRun, RecipeRun

    plain = measured(technique="none", p50=0.018, accuracy=98.0, size=106_291)
    archived = dataclasses.replace(
        measured(technique="deep-compression", p50=0.02, accuracy=97.5, size=106_291),
        recipe=RecipeRun(name="deep-compression", source="shipped", text="", export={},
                         reports=(PassRun("cluster", {}, {"archive_bytes": 16_384}),)))
    fig, _ = quality_chart(entries([plain, archived]), QUALITIES[0], AXES[1])
    points = {x for trace in fig.data if not trace.name.startswith("Pareto front")
              for x in trace.x}
    assert {16.0, 106_291 / 1024} <= points
    text, _ = page_text(build_report([plain, archived]))
    assert "16.0 KiB" in text and "file 103.8 KiB" in text
    assert "18 µs" in text and "20 µs" in text


def test_models_without_labels_are_plotted_by_agreement():
    unlabelled = [measured(technique=t, accuracy=None, agreement=Agreement(cos, 0.1,
                                                                           decision=dec))
                  for t, cos, dec in [("x", 0.99, 97.0), ("y", 0.999, 99.5)]]
    assert quality_of(unlabelled).key == "decision"
    no_decision = [dataclasses.replace(r, agreement=Agreement(0.9, 0.1)) for r in unlabelled]
    assert quality_of(no_decision).key == "cosine"
    nothing = [dataclasses.replace(r, agreement=None) for r in unlabelled]
    assert quality_of(nothing) is None
    text, charts = page_text(build_report(nothing))
    assert "No successful measurement here has accuracy or agreement." in text
    assert charts == ["chart-latency-box", "chart-latency-ecdf-1"]
    _, charts = page_text(build_report(unlabelled))
    assert "chart-decision-latency" in charts and "chart-decision-size" in charts


# --- energy ---------------------------------------------------------------------------------


def test_energy_absent_the_page_says_why():
    made = [measured(technique="a", energy_reason="no INA3221 rail found under /sys"),
            measured(technique="b", target="pi5", energy_reason="no power sensor on this board")]
    text, charts = page_text(build_report(made))
    assert "chart-energy" not in charts
    assert "No run here measured energy." in text
    assert "no INA3221 rail found under /sys (1 artifact on local)" in text
    assert "no power sensor on this board (1 artifact on pi5)" in text


def test_energy_measured_is_charted_and_the_rest_explained():
    made = [measured(technique="a", energy_mj=1.25,
                     device=device(power=PowerReport(probe="hwmon", energy_mj=1.25,
                                                     reason=None, avg_w=2.5))),
            measured(technique="b", energy_reason="the pass was shorter than the sensor's period")]
    text, charts = page_text(build_report(made))
    assert "chart-energy" in charts and "No run here measured energy." not in text
    assert "1.25 mJ" in text
    assert "the pass was shorter than the sensor's period (1 artifact on local)" in text


# --- escaping -------------------------------------------------------------------------------


def hostile_records():
    search = SearchLog(target=AgreementTarget(min_cosine=0.99), kept=HOSTILE, met=False,
                       tried=(Tried(name=HOSTILE, options={}, cosine=0.9,
                                    float_layers=[HOSTILE_IMG]),))
    plan = PlanRecord(profile=HOSTILE, model=HOSTILE,
                      decisions=(Decision("threads", HOSTILE, HOSTILE_IMG, True),),
                      warnings=(HOSTILE,))
    good = measured(HOSTILE, technique=HOSTILE_IMG, target=HOSTILE_LINK,
                    flags=[Flag(FlagKind.NOTE, HOSTILE)],
                    plan=plan, runtime=HOSTILE_IMG, tag=HOSTILE, run_id=HOSTILE_IMG,
                    calib_sha256=HOSTILE, calib_source=HOSTILE_IMG, energy_reason=HOSTILE,
                    manifest=manifest(model=HOSTILE, search=search, float_layers=(HOSTILE,)),
                    device=device(device_before=state(cpu_model=HOSTILE, governor=HOSTILE_IMG,
                                                      temperatures_c={HOSTILE: 50.0})),
                    git={"commit": HOSTILE, "branch": HOSTILE_IMG, "dirty": True})
    failed = dataclasses.replace(record(HOSTILE_IMG, error=HOSTILE), artifact_name=HOSTILE)
    return [good, failed]


# Seven artifacts of two models on two boards: 28 latency distributions, as a user had them.
WIDE = [("none", "fp32", 1.0, 0.0), ("none", "fp16", 0.8, 0.1), ("ptq", "int8", 0.45, 0.6),
        ("ptq-per-channel", "int8", 0.5, 0.2), ("prune-30", "fp32", 0.75, 0.4),
        ("prune-50+ptq", "int8", 0.3, 2.5), ("lowrank", "fp32", 0.7, 1.2)]
LONG_FLAG = ("below target: cosine 0.97 under 0.99; 12 layers kept in float: "
             + ",".join(f"features.{i}.block.conv_pw" for i in range(12)))


def wide_records() -> list:
    """The 28 artifacts, every third profiled per op (one op named by a hostile model), the
    least accurate ones flagged with a long unbroken list of layers."""
    made, seed = [], 0
    for model in ("mobilenet-v3-small", "efficientnet-lite0"):
        for target in ("pi4", "jetson-orin"):
            for technique, precision, speed, drop in WIDE:
                seed += 1
                scale = 20 * speed * (3 if target == "pi4" else 1) * (1 + (model[0] == "e"))
                base = record(model, seed=seed)
                samples = sorted(v * scale for v in base.samples_ms)
                ops = (OpTime("Conv", HOSTILE, 2.0 * speed, "CPUExecutionProvider", False),
                       OpTime("QuantizeLinear", "q", 0.4 * (precision == "int8"), "cpu", False),
                       OpTime("Transpose", "t", 0.3, "xnnpack", True),
                       OpTime("MatMul", "fc", 0.6, "xnnpack", True))
                made.append(dataclasses.replace(
                    base, technique=technique, target=target, precision=precision,
                    samples_ms=samples, latency_ms=Latency(samples[25], samples[45],
                                                           samples[49], samples[25], 0.1, 50),
                    accuracy=75.0 - drop, float_accuracy=75.0, size_bytes=int(4e6 * speed),
                    manifest=manifest(model=model, precision=precision),
                    profile=summarize_profile(OpProfile("onnxruntime", 20, ops))
                    if seed % 3 == 0 else None,
                    flags=[Flag(FlagKind.NOTE, LONG_FLAG)] if drop > 2 else []))
    return made


# Where the page's parts are at the current width: the document's width, the top cards, the
# tables against their containers, and each chart's plot area and legend.
LAYOUT_JS = """() => {
  const box = el => { const r = el.getBoundingClientRect();
                      return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  return {
    width: document.documentElement.scrollWidth, viewport: window.innerWidth,
    gate: box(document.getElementById('gate')), summary: box(document.getElementById('summary')),
    tables: Array.from(document.querySelectorAll('table')).map(t => ({
        width: t.scrollWidth, room: t.parentElement.clientWidth,
        scrolls: getComputedStyle(t.parentElement).overflowX === 'auto',
        artifacts: t.id === 'artifact-table'})),
    charts: Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => ({
        id: div.id, box: box(div), plot: box(div.querySelector('.nsewdrag')),
        legend: div.querySelector('.legend') ? box(div.querySelector('.legend')) : null})),
  };
}"""


def test_hostile_names_are_text_and_never_run_and_the_page_fits_the_window(tmp_path):
    slower = Check("mobilenet-v3-small ptq pi4 tflite int8", "latency p50", Verdict.FAIL,
                   "0.9 -> 1.4 ms (+55.0%): beyond the limit +25%.")
    gate = GateReport("tag:release-1", "run 42", GateConfig(), checks=(
        slower, Check(HOSTILE, "accuracy", Verdict.PASS, "within"),
        Check("efficientnet-lite0 none pi4 tflite fp32", "measured", Verdict.MISSING,
              "the candidate failed: lost the board.")))
    path = write_report(tmp_path / "evil.html", hostile_records() + wide_records(),
                        source=HOSTILE, filters=[f"--model {HOSTILE}"], gate=gate)
    html = path.read_text()
    for hostile in (HOSTILE, HOSTILE_IMG, HOSTILE_LINK):
        assert hostile not in html  # never as markup
    text, charts = page_text(html)
    assert text.count(HOSTILE) >= 10 and HOSTILE_IMG in text and HOSTILE_LINK in text
    with offline_page(path) as visit:
        assert visit.dialogs == [] and visit.page_errors == [] and visit.console_errors == []
        assert visit.blocked == []
        dom = visit.page.evaluate("""() => ({
            scripts: document.scripts.length, images: document.images.length,
            links: Array.from(document.querySelectorAll('a'))
                .filter(a => !(a.getAttribute('href') || '').startsWith('#')).length,
            body: document.body.textContent,
            box: document.getElementById('chart-latency-box').textContent})""")
        # The page's own scripts only: plotly's config, plotly.js, one per chart.
        assert dom["scripts"] == 2 + len(charts) and dom["images"] == 0
        assert dom["links"] == 0  # only the page's own #anchors
        for hostile in (HOSTILE, HOSTILE_IMG, HOSTILE_LINK):
            assert hostile in dom["body"]
        # plotly shows the names as written, tags and all.
        assert HOSTILE in dom["box"] and HOSTILE_LINK in dom["box"]

        # A reviewer's first screen at 1280 x 800 and at 1920 x 1080: the gate's verdict, then
        # the best artifacts; nothing wider than the window, no legend over its plot.
        for width, height in ((1280, 800), (1920, 1080)):
            visit.page.set_viewport_size({"width": width, "height": height})
            visit.page.wait_for_timeout(200)  # plotly redraws at the new width
            layout = visit.page.evaluate(LAYOUT_JS)
            shot = tmp_path / f"report-{width}.png"
            visit.page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            assert 0 <= layout["gate"]["top"] < layout["summary"]["top"]
            assert layout["summary"]["bottom"] <= height, layout["summary"]
            assert layout["width"] <= layout["viewport"]  # nothing wider than the window
            for table in layout["tables"]:  # each fits, or scrolls within its own card
                assert table["width"] <= table["room"] or table["scrolls"], table
            (artifacts,) = [t for t in layout["tables"] if t["artifacts"]]
            assert artifacts["width"] <= artifacts["room"]  # flags and all, never cut
            ecdfs = [c for c in layout["charts"] if c["id"].startswith("chart-latency-ecdf")]
            assert len(ecdfs) == 5  # one per model and board (the hostile one's included)
            for chart in layout["charts"]:
                assert chart["box"]["right"] <= width, chart
                assert chart["plot"]["bottom"] - chart["plot"]["top"] >= 200, chart
                if chart["legend"]:  # below the plot, never over it
                    assert chart["legend"]["top"] >= chart["plot"]["bottom"], chart
        side_by_side = [c for c in layout["charts"] if c["id"].startswith("chart-latency-ecdf")]
        assert len({c["box"]["top"] for c in side_by_side}) < len(side_by_side)


# --- the command ----------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def test_report_filters(results_db, tmp_path):
    with Store() as store:
        store.add_run([measured("alpha-net", technique="none", created_at=_now(), tag="rel-1"),
                       measured("beta-net", technique="none", created_at=_now(),
                                tag="rel-1")], command="deploy")
        store.add_run([measured("alpha-net", technique="prune-x", created_at=_now()),
                       measured("alpha-net", technique="none", target="pi4",
                                created_at="2020-01-01T00:00:00+00:00")], command="deploy")
        store.add_run([record("gamma-net", error="lost the board")], command="bench")
    out = tmp_path / "r.html"

    def shown(*flags):
        assert main(["report", *flags, "-o", str(out)]) == 0
        text, _ = page_text(out.read_text())
        return {(m, t, target) for m in ("alpha-net", "beta-net", "gamma-net")
                for t in ("none", "prune-x") for target in ("local", "pi4")
                if f"{m} · tflite fp32 · {t} @ {target}" in text}

    assert shown() == {("alpha-net", "none", "local"), ("beta-net", "none", "local"),
                       ("alpha-net", "prune-x", "local"), ("alpha-net", "none", "pi4")}
    assert shown("--model", "alpha-net") == {("alpha-net", "none", "local"),
                                             ("alpha-net", "prune-x", "local"),
                                             ("alpha-net", "none", "pi4")}
    assert shown("--target", "pi4") == {("alpha-net", "none", "pi4")}
    assert shown("--technique", "prune-x") == {("alpha-net", "prune-x", "local")}
    assert shown("--tag", "rel-1") == {("alpha-net", "none", "local"),
                                       ("beta-net", "none", "local")}
    assert shown("--since", "2025-01-01", "--model", "alpha-net") == {
        ("alpha-net", "none", "local"), ("alpha-net", "prune-x", "local")}
    assert ("gamma-net", "none", "local") in shown("--failed")
    assert "lost the board" in page_text(out.read_text())[0]


def test_no_matching_results_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "empty.db"))
    out = tmp_path / "report.html"
    assert main(["report", "-o", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no successful results are recorded in" in err and "edgecomp deploy" in err
    assert not out.exists()
    with Store() as store:
        store.add_run([measured("alpha-net")], command="deploy")
    assert main(["report", "--model", "other", "--since", "7d", "-o", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "match --model other --since 7d" in err and "loosen the filters" in err
    assert not out.exists()
    assert main(["report", "-o", str(tmp_path)]) == 1  # a folder is not a file name
    assert "is a folder" in " ".join(capsys.readouterr().err.split())


# --- the "done when": two deploys of the demo, one file, every chart drawn offline ---


@pytest.mark.slow
def test_two_demo_deploys_make_one_offline_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "results.db"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for tag in ("first", "second"):
        assert main(["deploy", "--target", "local", "--runs", "20", "--seconds", "0.2",
                     "--warmup-seconds", "0.05", "--tag", tag, "-o", "artifacts",
                     "--json", f"{tag}.json"]) == 0
    deployed = [r for tag in ("first", "second")
                for r in json.loads((work / f"{tag}.json").read_text())]
    capsys.readouterr()
    before = set(work.rglob("*"))

    assert main(["report", "-o", "tmp/report.html"]) == 0
    report = work / "tmp" / "report.html"
    assert set(work.rglob("*")) - before == {report.parent, report}  # one file, nothing else
    assert f"{len(deployed)} artifact result(s) from 2 run(s)" in capsys.readouterr().out

    text, chart_ids = page_text(report.read_text())
    assert sorted(chart_ids) == ["chart-accuracy-latency", "chart-accuracy-size",
                                 "chart-latency-box", "chart-latency-ecdf-1"]
    for result in deployed:  # every plan reason, int8 candidate and condition is on the page
        for decision in result["plan"]["decisions"].values():
            assert decision["reason"] in text
        for tried in (result["manifest"].get("search") or {}).get("tried", []):
            assert tried["name"] in text
        assert result["runtime"] in text and result["energy_reason"] in text
        if result["calib_sha256"]:
            assert result["calib_sha256"][:12] in text
    assert {"first", "second"} <= set(text.split())

    with offline_page(report) as visit:
        assert visit.blocked == [] and visit.dialogs == []
        assert visit.console_errors == [] and visit.page_errors == []
        charts = visit.charts()
        assert sorted(c["id"] for c in charts) == sorted(chart_ids)
        for chart in charts:
            assert chart["svg"] and chart["types"] and chart["drawn"] > 0, chart
            colours, chromatic = distinct_colours(
                visit.page.locator(f"#{chart['id']}").screenshot())
            assert colours > 1 and chromatic > 50, chart["id"]
        by_id = {c["id"]: c for c in charts}
        # One box and one ECDF line per artifact of both runs.
        assert by_id["chart-latency-box"]["types"].count("box") == len(deployed)
        assert by_id["chart-latency-ecdf-1"]["types"].count("scatter") == len(deployed)
        shot = tmp_path / "report.png"
        visit.page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_the_same_artifact_on_several_boards_is_side_by_side():
    made = [measured(target="pi-a", p50=2.0, accuracy=97.5),
            measured(target="pi-b", p50=3.0, accuracy=97.0),
            measured(target="arm64-emulated", p50=40.0, accuracy=96.5, emulated=True),
            measured(target="pi-a", technique="pruned", p50=1.0)]  # on one board only
    text, _ = page_text(build_report(made))
    assert "The same artifacts across boards" in text
    start = text.index("The same artifacts across boards")
    table = text[start:text.index("Artifacts", start + 40)]
    assert table.index("arm64-emulated") < table.index("pi-a") < table.index("pi-b") < \
        table.index("same file")
    cells = table[table.index("same file"):]
    assert cells.index("40 ms emulated96.50 %") < cells.index("2 ms97.50 %") < \
        cells.index("3 ms97.00 %")
    assert "pruned" not in table  # measured on one board: nothing to put beside it
    assert "its latency is not a real board's" in table


def test_one_board_has_no_side_by_side_section():
    text, _ = page_text(build_report([measured(target="pi-a"), measured(target="pi-a",
                                                                        technique="x")]))
    assert "across boards" not in text.lower()
