"""The report's per-op profile (`--profile-ops`): where each profiled artifact spends its
op time, by op type, with the share outside the delegate and in data-movement ops
(quantize/dequantize, transpose, reshape...), as `results.execution` summarized it."""

from __future__ import annotations

from typing import Any, Sequence

from edgecomp.results.charts import PALETTE, Entry, chart_layout, plotly_text
from edgecomp.results.units import duration_text

OP_TYPES = 8  # op types drawn by name; the rest are "other"
OTHER = "#c7ccd4"


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def profiled(entries: Sequence[Entry]) -> list[Entry]:
    """The entries whose runtime reported per-op times."""
    return [e for e in entries if e.record.ok and (e.record.profile or {}).get("top")]


def unprofiled(entries: Sequence[Entry]) -> list[str]:
    """Why each artifact measured with `--profile-ops` has no per-op times."""
    return [f"{e.name}: {e.record.profile.get('reason') or 'the runtime reported no ops'}"
            for e in entries if e.record.ok and e.record.profile is not None
            and not e.record.profile.get("top")]


def op_chart(shown: Sequence[Entry]) -> Any:
    """One bar per artifact, split by op type into shares of its op time; the op types
    with the most time over all artifacts keep their name and colour in every bar."""
    import plotly.graph_objects as go

    totals: dict[str, float] = {}
    for entry in shown:
        for kind in entry.record.profile.get("by_type") or ():
            totals[kind["op_type"]] = totals.get(kind["op_type"], 0.0) + (kind["share"] or 0)
    named = sorted(totals, key=lambda k: -totals[k])[:OP_TYPES]
    labels = [f"#{e.number} {plotly_text(e.short or e.name)} @ {plotly_text(e.record.target)}"
              for e in shown]
    fig = go.Figure()
    for index, kind in enumerate([*named, None]):
        shares = [_share(entry.record.profile, kind, named) * 100 for entry in shown]
        fig.add_trace(go.Bar(
            x=shares, y=labels, orientation="h", name=plotly_text(kind or "other"),
            marker_color=PALETTE[index % len(PALETTE)] if kind else OTHER,
            text=[f"{v:.0f} %" if v >= 8 else "" for v in shares], textposition="inside",
            hovertemplate=f"{plotly_text(kind or 'other op types')} %{{x:.1f}} % of op time"
                          "<extra>%{y}</extra>"))
    chart_layout(fig, title="Where the op time goes (share of each artifact's profiled op time)",
            x_title="% of op time", height=160 + 34 * len(shown))
    fig.update_layout(barmode="stack", yaxis=dict(autorange="reversed"))
    fig.update_xaxes(range=[0, 100])
    return fig


def _share(profile: dict[str, Any], kind: str | None, named: list[str]) -> float:
    """The share of op time in op type `kind` (None: in the types not `named`)."""
    by_type = profile.get("by_type") or ()
    if kind is None:
        return sum(k["share"] or 0 for k in by_type if k["op_type"] not in named)
    return sum(k["share"] or 0 for k in by_type if k["op_type"] == kind)


def profile_rows(shown: Sequence[Entry]) -> list[dict[str, Any]]:
    """The numbers beside the chart: op time against the timed p50, the share outside the
    delegate and in data movement, and the slowest ops."""
    rows = []
    for entry in shown:
        profile, latency = entry.record.profile, entry.record.latency_ms
        rows.append({
            "anchor": entry.anchor, "number": entry.number, "name": entry.name,
            "total": duration_text(profile["total_ms"]) if profile.get("total_ms") else "–",
            "p50": duration_text(latency.p50), "runs": profile.get("runs"),
            "outside": _percent(profile.get("outside_delegate_share")),
            "moving": _percent(profile.get("data_movement_share")),
            "top": [f"{op['op_type']} {op['name']} ({_percent(op['share'])}, {op['executor']})"
                    for op in profile["top"][:3]],
            "source": profile.get("source") or "–"})
    return rows
