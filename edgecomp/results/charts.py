"""The report's charts: plotly figures of the latency distributions (one ECDF per model and
target), of quality against latency and against size with each Pareto front marked, and of
energy per inference.

Each figure is drawn from the page's entries (`Entry`) into a div with a fixed id;
the page embeds plotly.js once. Text handed to plotly is escaped (`plotly_text`), since
plotly renders a subset of HTML (<b>, <a href>, ...) in labels.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from edgecomp.results.compare import shipped_bytes
from edgecomp.results.record import ResultRecord


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


def plotly_text(text: str) -> str:
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
    short: str = ""  # format precision · technique, where model and target go without saying

    @property
    def anchor(self) -> str:
        return f"artifact-{self.number}"

    @property
    def plot_label(self) -> str:
        """Two lines for plotly, each escaped."""
        return f"{plotly_text(self.name)}<br>{plotly_text(self.when)}"


def chart_layout(fig, *, title: str, x_title: str, y_title: str | None = None,
                 height: int = 460, x_log: bool = False) -> Any:
    """Give a figure the look every chart of the page shares: title, axes, legend below."""
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"), template="plotly_white", height=height,
        margin=dict(l=20, r=20, t=50, b=40), font=dict(size=12),
        # The legend at the foot of the figure (its container, not the plot), which grows
        # its bottom margin to hold it: never over the plot, however many rows it takes.
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0, x=0.0),
        hoverlabel=dict(align="left"))
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
    return chart_layout(fig, title="Latency per inference (box: quartiles, whiskers 1.5 IQR, "
                        "× p99)", x_title="ms", height=140 + 48 * len(measured),
                        x_log=_wide(every))


def latency_ecdfs(measured: Sequence[Entry], *, points: int = 400) -> list[Any]:
    """Small multiples: one ECDF per model and target (latencies compare only there), each
    line named by what tells it apart in its panel."""
    panels: dict[tuple[str, str], list[Entry]] = {}
    for entry in measured:
        panels.setdefault((entry.model, entry.record.target), []).append(entry)
    return [latency_ecdf(members, title=f"{model} @ {target}", points=points)
            for (model, target), members in panels.items()]


def latency_ecdf(measured: Sequence[Entry], *, title: str, points: int = 400) -> Any:
    """The share of inferences at or below each latency, one line per artifact (at most
    `points` exact points of each ECDF, the first and last sample included)."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    every = []
    runs: dict[str, int] = {}
    for entry in measured:
        runs[entry.short] = runs.get(entry.short, 0) + 1
    for entry in measured:
        s = np.sort(np.asarray(entry.record.samples_ms, dtype=float))
        at = np.unique(np.linspace(0, s.size - 1, min(points, s.size)).round().astype(int))
        every += [s[0], s[-1]]
        label = entry.short + (f" · {entry.record.run_id or entry.record.when('%m-%d %H:%M')}"
                               if runs[entry.short] > 1 else "")
        fig.add_trace(go.Scatter(
            x=s[at], y=(at + 1) / s.size * 100, mode="lines", line=dict(shape="hv", width=2,
                                                                        color=entry.colour,
                                                                        dash=entry.dash),
            name=f"#{entry.number} {plotly_text(label)}",
            customdata=[entry.plot_label] * len(at),
            hovertemplate="%{customdata}<br>%{y:.1f} % of inferences ≤ %{x:.4g} ms"
                          "<extra></extra>"))
    chart_layout(fig, title=f"Latency distribution, {plotly_text(title)} (ECDF of every "
                 "timed run)", x_title="ms", y_title="% of inferences",
                 height=330 + 22 * len(measured), x_log=_wide(every))
    fig.update_layout(legend=dict(orientation="v", font=dict(size=11)))
    return fig


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
    # What is shipped: a recipe's Huffman archive where it wrote one, else the file.
    Axis("size", "size (KiB)", lambda r: shipped_bytes(r) / 1024, lambda e: (e.model,),
         "small and accurate"),
)


# One marker shape per precision, so that points differ by more than colour; others take
# the remaining shapes in turn.
SYMBOLS = {"fp32": "circle", "fp16": "square", "int8": "triangle-up", "int16": "diamond"}
OTHER_SYMBOLS = ("star", "hexagon", "cross", "pentagon", "x", "triangle-down")


def precision_symbol(precision: str) -> str:
    """The marker shape of an artifact of `precision`."""
    if precision in SYMBOLS:
        return SYMBOLS[precision]
    return OTHER_SYMBOLS[sum(map(ord, precision)) % len(OTHER_SYMBOLS)]


def quality_chart(plotted: Sequence[Entry], quality: Quality, axis: Axis) -> tuple[Any, list]:
    """Quality against `axis`: one marker trace per artifact (its runs together), shaped by
    precision and labelled with the artifact's row number, each group's Pareto front as
    larger outlined markers joined by a step line. Also returns the fronts as
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
            first = members[points[0]]
            symbol = precision_symbol(first.record.precision)
            fig.add_trace(go.Scatter(
                x=[xs[i] for i in points], y=[ys[i] for i in points], mode="markers+text",
                name=plotly_text(name), customdata=[members[i].plot_label for i in points],
                text=[f"#{members[i].number}" for i in points], textposition="top center",
                textfont=dict(size=10, color="#333"), showlegend=False,
                marker=dict(color=first.colour, symbol=symbol,
                            size=[15 if i in front else 10 for i in points],
                            line=dict(width=[2.5 if i in front else 0.5 for i in points],
                                      color="#111")), hovertemplate=hover))
        steps = sorted(front, key=lambda i: (xs[i], ys[i]))
        fig.add_trace(go.Scatter(
            x=[xs[i] for i in steps], y=[ys[i] for i in steps], mode="lines",
            line=dict(shape="hv", dash=DASHES[(index + 1) % len(DASHES)], color="#333",
                      width=1.5),
            name=f"Pareto front: {plotly_text(' @ '.join(group))}",
            hoverinfo="skip"))
        fronts.append((" @ ".join(group), [members[i] for i in steps]))
    precisions = sorted({e.record.precision for e in plotted})
    for precision in precisions:
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=plotly_text(precision),
            marker=dict(symbol=precision_symbol(precision), size=10, color="#888",
                        line=dict(width=0.5, color="#111"))))
    chart_layout(fig, title=f"{quality.title[0].upper() + quality.title[1:]} against "
                 f"{axis.title.split(' (')[0]}", x_title=axis.title, y_title=quality.title,
                 x_log=_wide([axis.value(e.record) for e in plotted]),
                 height=420 + 16 * (len(groups) + len(precisions)))  # room for the legend
    return fig, fronts


def energy_chart(measured: Sequence[Entry]) -> Any:
    """Energy per inference of the artifacts a power probe measured."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for entry in reversed(measured):
        power = entry.record.device.power if entry.record.device is not None else None
        fig.add_trace(go.Bar(
            x=[entry.record.energy_mj], y=[entry.plot_label], orientation="h",
            marker_color=entry.colour, showlegend=False,
            customdata=[[plotly_text(power.probe if power else "?"),
                         power.avg_w if power else None]],
            hovertemplate="%{x:.4g} mJ per inference<br>probe %{customdata[0]}, "
                          "average %{customdata[1]:.3g} W<extra></extra>"))
    return chart_layout(fig, title="Energy per inference", x_title="mJ",
                        height=140 + 48 * len(measured))


def chart_html(fig, chart_id: str) -> str:
    """The figure as a div with id `chart_id`, without plotly.js (the page embeds it once)."""
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=chart_id,
                       config=PLOT_CONFIG)
