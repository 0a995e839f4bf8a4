"""The HTML report: stored results as one self-contained page people can open anywhere.

The page: first the gate's verdict (for `edgecomp gate --report`) and the best artifact of each
model on each board with the reason (`results.report_top`, `results.best`); then every artifact
with its numbers, the plan's reasons and the int8 candidates tried, the same artifacts across
boards, and the conditions of every run, around the charts of `results.charts` (latency
distributions, quality against latency and size with the Pareto fronts, energy per inference)
and `results.op_chart` (the per-op profile). plotly.js is embedded once and a
Content-Security-Policy forbids every fetch, so the file opens offline and cannot reach the
network. Names come from users: the template escapes every value (Jinja2 autoescape), and text
handed to plotly is escaped as well, since plotly renders a subset of HTML (<b>, <a href>, ...)
in labels.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from edgecomp.agent.protocol import DeviceState
from edgecomp.hardware.plan import PlanRecord
from edgecomp.results.charts import (AXES, DASHES, PALETTE, QUALITIES, Entry, chart_html,
                                     energy_chart, latency_box, latency_ecdfs, quality_chart,
                                     quality_of)
from edgecomp.results.op_chart import op_chart, profile_rows, profiled, unprofiled
from edgecomp.results.record import ResultRecord
from edgecomp.results.report_top import best_rows, gate_verdict
from edgecomp.results.compare import shipped_bytes
from edgecomp.results.stability import spread_text
from edgecomp.results.units import duration_text, size_text

if TYPE_CHECKING:
    from edgecomp.results.gate import GateReport


def throttled(record: ResultRecord) -> bool:
    """Whether the board throttled (or reached its throttle temperature) while measuring."""
    device = record.device
    return device is not None and (bool(device.throttled_during)
                                   or bool((device.device_after.throttled or 0) & 0xF))


def hottest_c(state: DeviceState | None) -> float | None:
    """The highest temperature a device state reported, in °C."""
    temps = [t for t in (state.temperatures_c.values() if state else ()) if t is not None]
    return max(temps) if temps else None


def run_date(record: ResultRecord) -> str:
    return record.when()


def precision_text(record: ResultRecord) -> str:
    io = record.manifest.io_dtype
    return record.precision + (" (int8 I/O)" if io == "int8" and record.precision == "int8"
                               else "")


def artifact_name(record: ResultRecord, model: str | None = None) -> str:
    """model · format precision · technique @ target; `model` names the model where its
    name alone is ambiguous (`compare.model_labels`)."""
    return (f"{model or record.model} · {record.format} {precision_text(record)} · "
            f"{record.technique} @ {record.target}")


def number(value: float | None, spec: str = ".3f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


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
                         DASHES[runs[name] % len(DASHES)],
                         short=f"{record.format} {precision_text(record)} · {record.technique}"))
        runs[name] += 1
    return out


# ---------------------------------------------------------------------------------------
# The page: plain values for the template, which escapes every one of them.


def _plan_rows(plan: PlanRecord | None) -> list[dict[str, Any]]:
    if plan is None:
        return []
    rows = [{"key": d.key, "value": _setting(d.value), "reason": d.reason,
             "overridden": d.overridden} for d in plan.decisions]
    rows.append({"key": "memory", "value": plan.memory_fit, "reason": plan.memory_reason,
                 "overridden": False})
    return rows


def _setting(value: Any) -> str:
    """A plan value as `--set key=value` spells it."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _search(record: ResultRecord) -> dict[str, Any] | None:
    search = record.manifest.search
    if search is None:
        return None
    tried = [{"name": t.name, "kept": t.name == search.kept, "met": t.met,
              "cosine": number(t.cosine, ".5f"), "cosine_min": number(t.cosine_min, ".4f"),
              "decision": number(t.decision, ".2f", " %"),
              "delta": number(t.accuracy_delta, "+.2f", " pt"),
              "size": size_text(t.size_bytes), "build": number(t.build_s, ".2f", " s"),
              "float_layers": list(t.float_layers), "error": t.error}
             for t in search.tried]
    return {"kept": search.kept, "met": search.met, "target": search.target.describe(),
            "tried": tried}


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
    before = device.device_before if device else None
    after = device.device_after if device else None
    target = device.target if device else None
    git = r.git or {}
    temps = (hottest_c(before), hottest_c(after))
    load = getattr(before, "load_avg", None)

    def state(field: str) -> Any:
        """A fact of the board's state after the measurement, else before it."""
        return getattr(after, field, None) or getattr(before, field, None)

    return {
        "target": r.target, "transport": (target.transport if target else None) or r.transport,
        "host": target.host if target else None,
        "profile": (target.profile if target else None) or (r.plan.profile if r.plan else None),
        "cpu": state("cpu_model"),
        "cores": f"{state('online_cores') or '?'} of {state('cores') or '?'} online",
        "governor": state("governor"), "kernel": state("kernel"),
        "runtime": r.runtime, "delegate": device.delegate if device else None,
        "threads": r.threads,
        "temperature": " → ".join(number(t, ".1f", " °C") for t in temps)
        if any(t is not None for t in temps) else "not reported",
        "throttled": throttled(r),
        "throttle_known": device is not None and (device.throttled_during is not None
                                                  or after.throttled is not None),
        "load": " / ".join(f"{v:.2f}" for v in load) if load else "–",
        "calib": r.calib_sha256, "calib_source": r.calib_source,
        "git": git.get("commit"), "branch": git.get("branch"), "dirty": git.get("dirty"),
    }


def _row(entry: Entry) -> dict[str, Any]:
    r = entry.record
    latency = r.latency_ms
    float_layers = list(r.manifest.float_layers or ())
    recipe = r.recipe
    return {
        "anchor": entry.anchor, "number": entry.number, "name": entry.name, "when": entry.when,
        "date": run_date(r),
        "model": entry.model, "technique": r.technique, "target": r.target, "format": r.format,
        "precision": precision_text(r), "artifact": r.artifact_name,
        "size": size_text(shipped_bytes(r)),
        "file_size": size_text(r.size_bytes) if shipped_bytes(r) != r.size_bytes else None,
        "quality": _quality_lines(r), "ok": r.ok, "error": r.error,
        "p50": duration_text(latency.p50 if latency else None),
        "p90": duration_text(latency.p90 if latency else None),
        "p99": duration_text(latency.p99 if latency else None),
        "count": latency.count if latency else None,
        "energy": number(r.energy_mj, ".4g", " mJ"),
        "energy_reason": r.energy_reason or "not measured",
        "flags": [flag.text for flag in r.flags], "throttled": throttled(r),
        "run_id": r.run_id, "tag": r.tag,
        "unstable": list(r.stability.reasons) if r.stability is not None else [],
        "spread": spread_text(r.stability),
        "emulated": r.emulated,
        "plan": _plan_rows(r.plan), "plan_profile": r.plan.profile if r.plan else None,
        "plan_warnings": list(r.plan.warnings) if r.plan else [],
        "recipe": recipe.name if recipe else None,
        "recipe_notes": [note for rep in recipe.reports for note in rep.notes]
        if recipe else [],
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
                "p50": duration_text(record.latency_ms.p50 if record.ok else None),
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


def build_report(records: Sequence[ResultRecord], *, source: str = "",
                 filters: Sequence[str] = (), title: str = "edgecomp report",
                 generated_at: str | None = None, gate: GateReport | None = None) -> str:
    """The report's HTML for `records` (read with their raw samples), as one string.

    `source` names where the records came from and `filters` how they were chosen; both
    are shown in the page's header. A `gate` judged on these records puts its verdict
    at the top.
    """
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    all_entries = entries(records)
    ok = [e for e in all_entries if e.record.ok]
    sampled = [e for e in ok if e.record.samples_ms]
    charts: dict[str, Any] = {"latency": [], "ecdf": [], "quality": [], "energy": None,
                              "ops": None}
    if sampled:
        charts["latency"] = [Markup(chart_html(latency_box(sampled), "chart-latency-box"))]
        charts["ecdf"] = [Markup(chart_html(fig, f"chart-latency-ecdf-{n}"))
                          for n, fig in enumerate(latency_ecdfs(sampled), 1)]
    with_ops = profiled(ok)
    if with_ops:
        charts["ops"] = Markup(chart_html(op_chart(with_ops), "chart-ops"))
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
                "html": Markup(chart_html(fig, f"chart-{quality.key}-{axis.key}")),
                "front_name": axis.front_name,
                "fronts": [(group, [f"{e.name} · {e.when}" for e in front])
                           for group, front in fronts]})
    energy = [e for e in ok if e.record.energy_mj is not None]
    if energy:
        charts["energy"] = Markup(chart_html(energy_chart(energy), "chart-energy"))
    rows = [_row(e) for e in all_entries]
    by_record = {id(e.record): row for e, row in zip(all_entries, rows)}
    board_names, boards = _across_boards(all_entries)
    page = _template().render(
        title=title, source=source, filters=list(filters),
        generated=generated_at or _dt.datetime.now(_dt.timezone.utc)
        .strftime("%Y-%m-%d %H:%M:%S UTC"),
        rows=rows, charts=charts, board_names=board_names, boards=boards,
        best=best_rows(records, by_record), gate=gate_verdict(gate),
        profiles=profile_rows(with_ops), unprofiled=unprofiled(ok),
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
