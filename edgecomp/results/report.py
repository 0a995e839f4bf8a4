"""The HTML report: stored results as one self-contained page people can open anywhere.

Latency distributions from the raw samples, accuracy against p50 latency and against size
with each Pareto front marked, energy per inference, every artifact with the plan's
reasons and the int8 candidates tried, and the conditions of every run. plotly.js is
embedded once and a Content-Security-Policy forbids every fetch, so the file opens offline
and cannot reach the network. Names come from users: the template escapes every value
(Jinja2 autoescape), and text handed to plotly is escaped as well, since plotly renders a
subset of HTML (<b>, <a href>, ...) in labels.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import spread_text


@dataclass(frozen=True)
class Quality:
    """One way to say how good an artifact's outputs are, best first in `QUALITIES`."""

    key: str
    title: str
    value: Callable[[ResultRecord], float | None]


QUALITIES = (
    Quality("accuracy", "top-1 accuracy (%)", lambda r: r.accuracy),
    Quality("decision", "same call as the float model (% of samples)",
            lambda r: r.decision),
    Quality("cosine", "output cosine to the float model",
            lambda r: r.agreement.cosine if r.agreement else None),
)

# Marker colours, one per artifact (model, format, precision, technique, target), so the
# same artifact keeps its colour across runs.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#7b4173")

# Line styles of the runs of one artifact (first, second, ...) and of the Pareto fronts.
DASHES = ("solid", "dot", "dash", "dashdot", "longdash", "longdashdot")

# plotly's modebar without the logo; the page makes no requests, so nothing to send.
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: none has an x as low (faster, smaller)
    and a y as high (more accurate) with one of them strictly better. Equal points are
    both on the front."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")  # the highest y among points with a lower x
    index = 0
    while index < len(order):
        x = points[order[index]][0]
        same_x = [i for i in order[index:] if points[i][0] == x]
        top = points[same_x[0]][1]
        if top > best:
            front += [i for i in same_x if points[i][1] == top]
            best = top
        index += len(same_x)
    return sorted(front)


def quality_of(records: Sequence[ResultRecord]) -> Quality | None:
    """The measure to plot a model's artifacts by: the first of `QUALITIES` that most of
    them have (all of them where one does)."""
    counts = [(sum(q.value(r) is not None for r in records), -n, q)
              for n, q in enumerate(QUALITIES)]
    count, _, quality = max(counts, key=lambda c: c[:2])
    return quality if count else None


def throttled(record: ResultRecord) -> bool:
    """Whether the board throttled (or reached its throttle temperature) while measuring."""
    after = record.device.get("device_after") or {}
    return bool(record.device.get("throttled_during")) or bool((after.get("throttled") or 0) & 0xF)


def hottest_c(state: dict[str, Any] | None) -> float | None:
    """The highest temperature a device state reported, in °C."""
    temps = [t for t in ((state or {}).get("temperatures_c") or {}).values() if t is not None]
    return max(temps) if temps else None


def run_date(record: ResultRecord) -> str:
    return record.when()


def precision_text(record: ResultRecord) -> str:
    io = record.manifest.get("io_dtype")
    return record.precision + (" (int8 I/O)" if io == "int8" and record.precision == "int8"
                               else "")


def artifact_name(record: ResultRecord, model: str | None = None) -> str:
    """model · format precision · technique @ target; `model` names the model where its
    name alone is ambiguous (`compare.model_labels`)."""
    return (f"{model or record.model} · {record.format} {precision_text(record)} · "
            f"{record.technique} @ {record.target}")


def size_text(size: int | None) -> str:
    if size is None:
        return "–"
    return f"{size / 1024:.1f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.2f} MiB"


def number(value: float | None, spec: str = ".3f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def _plotly_text(text: str) -> str:
    """`text` shown literally by plotly (which reads <b>, <br>, <a> ... as markup)."""
    return html.escape(text, quote=False)


@dataclass(frozen=True)
class Entry:
    """One record as the page shows it: its anchor, labels and colour."""

    record: ResultRecord
    number: int  # its row in the page's tables, from 1
    model: str  # the model's name, with its content's sha256 where the name is ambiguous
    name: str  # model · format precision · technique @ target
    when: str  # date and run
    colour: str  # the artifact's, in every chart
    dash: str  # which run of the artifact this is (ECDF line style)

    @property
    def anchor(self) -> str:
        return f"artifact-{self.number}"

    @property
    def plot_label(self) -> str:
        """Two lines for plotly, each escaped."""
        return f"{_plotly_text(self.name)}<br>{_plotly_text(self.when)}"


def entries(records: Sequence[ResultRecord]) -> list[Entry]:
    """The records sorted by model, target, artifact and date, each with its anchor. Two
    models sharing a name are told apart by their content (`make @1a2b3c4`)."""
    from edgecomp.results.compare import model_identity, model_labels

    labels = model_labels(list(records))
    chosen = sorted(records, key=lambda r: (labels[model_identity(r)], r.target,
                                            artifact_name(r, labels[model_identity(r)]),
                                            r.created_at))
    colours: dict[str, str] = {}
    runs: Counter = Counter()
    out = []
    for index, record in enumerate(chosen):
        model = labels[model_identity(record)]
        name = artifact_name(record, model)
        colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
        when = run_date(record) + (f" · run {record.run_id}" if record.run_id else "") + (
            " · THROTTLED" if throttled(record) else "")
        out.append(Entry(record, index + 1, model, name, when, colour,
                         DASHES[runs[name] % len(DASHES)]))
        runs[name] += 1
    return out


# ---------------------------------------------------------------------------------------
# Charts: each a plotly figure of its own, drawn into a div with a fixed id.


def _layout(fig, *, title: str, x_title: str, y_title: str | None = None,
            height: int = 460, x_log: bool = False) -> Any:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"), template="plotly_white", height=height,
        margin=dict(l=20, r=20, t=50, b=40), font=dict(size=12),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0.0), hoverlabel=dict(align="left"))
    fig.update_xaxes(title_text=x_title, type="log" if x_log else "linear", automargin=True)
    fig.update_yaxes(title_text=y_title, automargin=True)
    return fig


def _wide(values: Sequence[float]) -> bool:
    """Whether values span enough (20x) that a log axis reads better."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > 20


def latency_box(measured: Sequence[Entry]) -> Any:
    """One box per artifact from its raw samples: quartiles, Tukey whiskers, mean, and p99
    marked."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    every = []
    for entry in reversed(measured):  # plotly draws categories bottom-up
        s = np.asarray(entry.record.samples_ms, dtype=float)
        q1, median, q3, p99 = np.percentile(s, [25, 50, 75, 99])
        reach = 1.5 * (q3 - q1)
        low, high = s[s >= q1 - reach].min(), s[s <= q3 + reach].max()
        every += [low, p99]
        fig.add_trace(go.Box(
            y=[entry.plot_label], q1=[q1], median=[median], q3=[q3], lowerfence=[low],
            upperfence=[high], mean=[s.mean()], orientation="h", name=entry.plot_label,
            marker_color=entry.colour, showlegend=False))
        fig.add_trace(go.Scatter(
            x=[p99], y=[entry.plot_label], mode="markers", showlegend=False,
            marker=dict(symbol="x-thin-open", size=10, color=entry.colour, line=dict(width=2)),
            hovertemplate=f"p99 %{{x:.4g}} ms of {s.size} samples<extra></extra>"))
    return _layout(fig, title="Latency per inference (box: quartiles, whiskers 1.5 IQR, "
                   "× p99)", x_title="ms", height=140 + 48 * len(measured), x_log=_wide(every))


def latency_ecdf(measured: Sequence[Entry], *, points: int = 400) -> Any:
    """The share of inferences at or below each latency, one line per artifact (at most
    `points` exact points of each ECDF, the first and last sample included)."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    every = []
    for entry in measured:
        s = np.sort(np.asarray(entry.record.samples_ms, dtype=float))
        at = np.unique(np.linspace(0, s.size - 1, min(points, s.size)).round().astype(int))
        every += [s[0], s[-1]]
        fig.add_trace(go.Scatter(
            x=s[at], y=(at + 1) / s.size * 100, mode="lines", line=dict(shape="hv", width=2,
                                                                        color=entry.colour,
                                                                        dash=entry.dash),
            name=entry.plot_label,
            hovertemplate="%{y:.1f} % of inferences ≤ %{x:.4g} ms<extra></extra>"))
    return _layout(fig, title="Latency distribution (ECDF of every timed run)", x_title="ms",
                   y_title="% of inferences", height=440 + 34 * len(measured),
                   x_log=_wide(every))


@dataclass(frozen=True)
class Axis:
    """What a quality chart puts on x, and which artifacts share a Pareto front."""

    key: str
    title: str
    value: Callable[[ResultRecord], float]
    group: Callable[[Entry], tuple[str, ...]]
    front_name: str


AXES = (
    # Latency is comparable only on one target; size is the artifact's own.
    Axis("latency", "p50 latency (ms)", lambda r: r.latency_ms.p50,
         lambda e: (e.model, e.record.target), "fast and accurate"),
    Axis("size", "size (KiB)", lambda r: r.size_bytes / 1024, lambda e: (e.model,),
         "small and accurate"),
)


def quality_chart(plotted: Sequence[Entry], quality: Quality, axis: Axis) -> tuple[Any, list]:
    """Quality against `axis`: one marker trace per artifact (its runs together), each
    group's Pareto front as diamonds joined by a step line. Also returns the fronts as
    (group, [entries]) for the page's text."""
    import plotly.graph_objects as go

    groups: dict[tuple[str, ...], list[Entry]] = {}
    for entry in plotted:
        groups.setdefault(axis.group(entry), []).append(entry)
    fig, fronts = go.Figure(), []
    hover = (f"%{{customdata}}<br>{axis.title} %{{x:.4g}}<br>{quality.title} %{{y:.4g}}"
             "<extra></extra>")
    for index, (group, members) in enumerate(groups.items()):
        xs = [axis.value(e.record) for e in members]
        ys = [quality.value(e.record) for e in members]
        front = pareto_front(list(zip(xs, ys)))
        by_artifact: dict[str, list[int]] = {}
        for i, entry in enumerate(members):
            by_artifact.setdefault(entry.name, []).append(i)
        for name, points in by_artifact.items():
            fig.add_trace(go.Scatter(
                x=[xs[i] for i in points], y=[ys[i] for i in points], mode="markers",
                name=_plotly_text(name), customdata=[members[i].plot_label for i in points],
                marker=dict(color=members[points[0]].colour,
                            size=[16 if i in front else 10 for i in points],
                            symbol=["diamond" if i in front else "circle" for i in points],
                            line=dict(width=1, color="#222")), hovertemplate=hover))
        steps = sorted(front, key=lambda i: (xs[i], ys[i]))
        fig.add_trace(go.Scatter(
            x=[xs[i] for i in steps], y=[ys[i] for i in steps], mode="lines",
            line=dict(shape="hv", dash=DASHES[(index + 1) % len(DASHES)], color="#333",
                      width=1.5),
            name=f"Pareto front ({axis.front_name}): {_plotly_text(' @ '.join(group))}",
            hoverinfo="skip"))
        fronts.append((" @ ".join(group), [members[i] for i in steps]))
    _layout(fig, title=f"{quality.title[0].upper() + quality.title[1:]} against "
            f"{axis.title.split(' (')[0]}", x_title=axis.title, y_title=quality.title,
            x_log=_wide([axis.value(e.record) for e in plotted]))
    return fig, fronts


def energy_chart(measured: Sequence[Entry]) -> Any:
    """Energy per inference of the artifacts a power probe measured."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for entry in reversed(measured):
        power = entry.record.device.get("power") or {}
        fig.add_trace(go.Bar(
            x=[entry.record.energy_mj], y=[entry.plot_label], orientation="h",
            marker_color=entry.colour, showlegend=False,
            customdata=[[_plotly_text(str(power.get("probe") or "?")), power.get("avg_w")]],
            hovertemplate="%{x:.4g} mJ per inference<br>probe %{customdata[0]}, "
                          "average %{customdata[1]:.3g} W<extra></extra>"))
    return _layout(fig, title="Energy per inference", x_title="mJ",
                   height=140 + 48 * len(measured))


# ---------------------------------------------------------------------------------------
# The page: plain values for the template, which escapes every one of them.


def _plan_rows(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not plan:
        return []
    rows = [{"key": key, "value": _setting(d.get("value")), "reason": d.get("reason"),
             "overridden": d.get("overridden")} for key, d in plan.get("decisions", {}).items()]
    fit = plan.get("memory_fit")
    if fit:
        rows.append({"key": "memory", "value": fit.get("value"), "reason": fit.get("reason"),
                     "overridden": False})
    return rows


def _setting(value: Any) -> str:
    """A plan value as `--set key=value` spells it."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _search(record: ResultRecord) -> dict[str, Any] | None:
    search = record.manifest.get("search")
    if not search:
        return None
    # Worded as AgreementTarget.describe() words it (importing edgecomp.quantize.search loads torch).
    target = search.get("target") or {}
    wanted = [f"cosine ≥ {target['min_cosine']:g}" if target.get("min_cosine") else None,
              f"top-1 drop ≤ {target['max_top1_drop']:g} pt"
              if target.get("max_top1_drop") is not None else None,
              f"same call on ≥ {target['min_decision']:g} %"
              if target.get("min_decision") is not None else None]
    tried = [{"name": t.get("name"), "kept": t.get("name") == search.get("kept"),
              "met": t.get("met"), "cosine": number(t.get("cosine"), ".5f"),
              "cosine_min": number(t.get("cosine_min"), ".4f"),
              "decision": number(t.get("decision"), ".2f", " %"),
              "delta": number(t.get("accuracy_delta"), "+.2f", " pt"),
              "size": size_text(t.get("size_bytes")),
              "build": number(t.get("build_s"), ".2f", " s"),
              "float_layers": t.get("float_layers") or [], "error": t.get("error")}
             for t in search.get("tried", [])]
    return {"kept": search.get("kept"), "met": search.get("met"),
            "target": ", ".join(w for w in wanted if w), "tried": tried}


def _quality_lines(record: ResultRecord) -> list[str]:
    """Top-1 accuracy (and its change), then the agreement with the float model."""
    lines = []
    if record.accuracy is not None:
        delta = record.accuracy_delta
        lines.append(f"{record.accuracy:.2f} %" + (f" ({delta:+.2f} pt)" if delta is not None
                                                    else ""))
    if record.agreement is not None:
        decision = record.agreement.decision
        lines.append((f"same call {decision:.1f} % · " if decision is not None else "")
                     + f"cosine {record.agreement.cosine:.4f}")
    return lines


def _conditions(entry: Entry) -> dict[str, Any]:
    r, device = entry.record, entry.record.device
    before, after = device.get("device_before") or {}, device.get("device_after") or {}
    git = r.git or {}
    temps = (hottest_c(before), hottest_c(after))
    load = before.get("load_avg")
    return {
        "target": r.target, "transport": device.get("transport") or r.transport,
        "host": device.get("host"), "profile": device.get("profile")
        or (r.plan or {}).get("profile"),
        "cpu": after.get("cpu_model") or before.get("cpu_model"),
        "cores": f"{after.get('online_cores') or before.get('online_cores') or '?'} of "
                 f"{after.get('cores') or before.get('cores') or '?'} online",
        "governor": after.get("governor") or before.get("governor"),
        "kernel": after.get("kernel") or before.get("kernel"),
        "runtime": r.runtime, "delegate": device.get("delegate"), "threads": r.threads,
        "temperature": " → ".join(number(t, ".1f", " °C") for t in temps)
        if any(t is not None for t in temps) else "not reported",
        "throttled": throttled(r), "throttle_known": device.get("throttled_during") is not None
        or after.get("throttled") is not None,
        "load": " / ".join(f"{v:.2f}" for v in load) if load else "–",
        "calib": r.calib_sha256, "calib_source": r.calib_source,
        "git": git.get("commit"), "branch": git.get("branch"), "dirty": git.get("dirty"),
    }


def _row(entry: Entry) -> dict[str, Any]:
    r = entry.record
    latency = r.latency_ms
    float_layers = r.manifest.get("float_layers") or []
    recipe = (r.plan or {}).get("recipe") or {}
    return {
        "anchor": entry.anchor, "number": entry.number, "name": entry.name, "when": entry.when,
        "date": run_date(r),
        "model": entry.model, "technique": r.technique, "target": r.target, "format": r.format,
        "precision": precision_text(r), "artifact": r.artifact_name,
        "size": size_text(r.size_bytes),
        "quality": _quality_lines(r), "ok": r.ok, "error": r.error,
        "p50": number(latency.p50 if latency else None, ".4g"),
        "p90": number(latency.p90 if latency else None, ".4g"),
        "p99": number(latency.p99 if latency else None, ".4g"),
        "count": latency.count if latency else None,
        "energy": number(r.energy_mj, ".4g", " mJ"),
        "energy_reason": r.energy_reason or "not measured",
        "flags": list(r.flags), "throttled": throttled(r), "run_id": r.run_id, "tag": r.tag,
        "unstable": list(r.stability.reasons) if r.stability is not None else [],
        "spread": spread_text(r.stability),
        "emulated": r.emulated,
        "plan": _plan_rows(r.plan), "plan_profile": (r.plan or {}).get("profile"),
        "plan_warnings": (r.plan or {}).get("warnings") or [],
        "recipe": recipe.get("name"),
        "recipe_notes": [note for rep in recipe.get("reports") or []
                         for note in rep.get("notes") or []],
        "search": _search(r), "float_layers": float_layers,
        "sha256": r.artifact_sha256, "conditions": _conditions(entry),
    }


def _across_boards(entries_: Sequence[Entry]) -> tuple[list[str], list[dict[str, Any]]]:
    """The same artifacts on several boards side by side: p50 and quality per board, each
    cell linking to its record; emulated boards' latencies are marked."""
    from edgecomp.results.compare import across_boards

    anchors = {id(e.record): e for e in entries_}
    targets, rows = across_boards([e.record for e in entries_])
    table = []
    for row in rows:
        cells = []
        for target in targets:
            record = row.on[target]
            entry = anchors.get(id(record)) if record is not None else None
            cells.append(None if record is None else {
                "anchor": entry.anchor if entry else "", "ok": record.ok,
                "p50": number(record.latency_ms.p50 if record.ok else None, ".4g"),
                "quality": _quality_lines(record)[:1], "emulated": record.emulated})
        table.append({"model": row.model, "technique": row.technique, "format": row.format,
                      "precision": row.precision, "same_build": row.same_build,
                      "cells": cells})
    return targets, table


def _energy_reasons(entries_: Sequence[Entry]) -> list[str]:
    """Why energy is missing, one line per reason with the artifacts and targets it held for."""
    reasons = Counter()
    targets: dict[str, set[str]] = {}
    for e in entries_:
        if e.record.ok and e.record.energy_mj is None:
            why = e.record.energy_reason or "no reason was recorded"
            reasons[why] += 1
            targets.setdefault(why, set()).add(e.record.target)
    return [f"{why} ({count} artifact{'s' * (count != 1)} on {', '.join(sorted(targets[why]))})"
            for why, count in reasons.most_common()]


def _chart(fig, chart_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=chart_id,
                       config=PLOT_CONFIG)


def build_report(records: Sequence[ResultRecord], *, source: str = "",
                 filters: Sequence[str] = (), title: str = "edgecomp report",
                 generated_at: str | None = None) -> str:
    """The report's HTML for `records` (read with their raw samples), as one string.

    `source` names where the records came from and `filters` how they were chosen; both
    are shown in the page's header.
    """
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    all_entries = entries(records)
    ok = [e for e in all_entries if e.record.ok]
    sampled = [e for e in ok if e.record.samples_ms]
    charts: dict[str, Any] = {"latency": [], "quality": [], "energy": None}
    if sampled:
        charts["latency"] = [Markup(_chart(latency_box(sampled), "chart-latency-box")),
                             Markup(_chart(latency_ecdf(sampled), "chart-latency-ecdf"))]
    by_quality: dict[str, list[Entry]] = {}
    models = sorted({e.model for e in ok})
    no_quality = []
    for model in models:
        members = [e for e in ok if e.model == model]
        quality = quality_of([e.record for e in members])
        kept = [e for e in members if quality and quality.value(e.record) is not None]
        by_quality.setdefault(quality.key if quality else "", []).extend(kept)
        no_quality += [e for e in members if e not in kept]
    for quality in QUALITIES:
        plotted = by_quality.get(quality.key)
        for axis in AXES if plotted else ():
            fig, fronts = quality_chart(plotted, quality, axis)
            charts["quality"].append({
                "html": Markup(_chart(fig, f"chart-{quality.key}-{axis.key}")),
                "front_name": axis.front_name,
                "fronts": [(group, [f"{e.name} · {e.when}" for e in front])
                           for group, front in fronts]})
    energy = [e for e in ok if e.record.energy_mj is not None]
    if energy:
        charts["energy"] = Markup(_chart(energy_chart(energy), "chart-energy"))
    rows = [_row(e) for e in all_entries]
    board_names, boards = _across_boards(all_entries)
    page = _template().render(
        title=title, source=source, filters=list(filters),
        generated=generated_at or _dt.datetime.now(_dt.timezone.utc)
        .strftime("%Y-%m-%d %H:%M:%S UTC"),
        rows=rows, charts=charts, board_names=board_names, boards=boards,
        boards_emulated=any(c and c["emulated"] for b in boards for c in b["cells"]),
        runs=len({e.record.run_id or e.anchor for e in all_entries}),
        models=models,
        shared_names=sorted({e.record.model for e in all_entries if e.model != e.record.model}),
        targets=sorted({e.record.target for e in all_entries}),
        failed=[r for r in rows if not r["ok"]],
        throttled=[r for r in rows if r["throttled"]],
        flagged=[r for r in rows if r["flags"]],
        unsampled=[f"{e.name} · {e.when}" for e in ok if not e.record.samples_ms],
        no_quality=[f"{e.name} · {e.when}" for e in no_quality],
        energy_reasons=_energy_reasons(all_entries),
        plotlyjs=Markup(get_plotlyjs()), version=_version())
    return page


def write_report(path: Path, records: Sequence[ResultRecord], **options: Any) -> Path:
    """Build the report (see `build_report`) and write it atomically to `path`."""
    from edgecomp.atomic import atomic_write_text

    atomic_write_text(path, build_report(records, **options))
    return path


def _version() -> str:
    from edgecomp import __version__

    return __version__


def _template():
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    # The page (report.html.j2, package data): one file, no external resources.
    page = resources.files("edgecomp.results").joinpath("report.html.j2").read_text("utf-8")
    return env.from_string(page)
