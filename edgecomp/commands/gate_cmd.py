"""`edgecomp gate`: judge a run against a baseline for CI, exit 0 pass, 1 regression, 2
could not judge; JUnit, Markdown and JSON reports beside the terminal table."""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, replace
from pathlib import Path

from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.select import SPECS

EPILOG = SPECS + """

candidate (default: the latest stored run that is not the baseline's; with branch:NAME,
the latest stored run):
  --run ID, --tag NAME or --results FILE (JSON as above)

exit status: 0 every check passed; 1 a regression; 2 could not judge (a run too unstable,
an artifact missing or failed, an interval straddling a limit, or bad input).
thresholds: gate.toml (--config; see examples/ci/gate.toml); the flags override it."""

# Flag, gate.toml section and key, help.
LIMIT_FLAGS = (
    ("--max-latency-increase", "latency", "max_increase", "p50 slowdown allowed (0.15 = 15%%)"),
    ("--max-p90-increase", "latency", "max_increase_p90", "p90 slowdown allowed (0.25)"),
    ("--alpha", "latency", "alpha", "significance level of the latency test (0.01)"),
    ("--max-accuracy-drop", "accuracy", "max_drop",
     "points of top-1 (or agreement) that may be lost (0.5)"),
    ("--max-size-increase", "size", "max_increase", "artifact growth allowed (0.05)"),
    ("--max-memory-increase", "memory", "max_increase", "peak RSS growth allowed (0.25)"),
    ("--max-energy-increase", "energy", "max_increase", "energy growth allowed (0.15)"),
)


def add_parser(subparsers) -> None:
    gate = subparsers.add_parser(
        "gate", help="judge a run against a baseline: exit 0 pass, 1 regression, 2 could "
                     "not judge",
        description="Compare each artifact's latency (p50 and p90: a Mann-Whitney test and\n"
                    "a block-bootstrap interval on the raw samples, against a tolerance),\n"
                    "accuracy, agreement, size, peak memory and energy with a baseline's.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    gate.add_argument("--baseline", required=True, metavar="SPEC",
                      help="run:ID, branch:NAME, tag:NAME, file:PATH, a file or a tag")
    which = gate.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", help="the candidate is this stored run")
    which.add_argument("--tag", metavar="NAME", help="the candidate is the runs tagged NAME")
    which.add_argument("--results", type=Path, metavar="FILE",
                       help="the candidate is this JSON file of results")
    gate.add_argument("--model", help="judge only this model's artifacts")
    gate.add_argument("--target", help="judge only artifacts measured on this target")
    gate.add_argument("--config", type=Path, metavar="TOML", help="thresholds (gate.toml)")
    for flag, _, _, text in LIMIT_FLAGS:
        gate.add_argument(flag, type=float, metavar="X", help=text)
    gate.add_argument("--junit", type=Path, metavar="XML", help="write JUnit XML here")
    gate.add_argument("--summary", type=Path, metavar="MD",
                      help="write a Markdown summary here (e.g. \"$GITHUB_STEP_SUMMARY\")")
    gate.add_argument("--json", type=Path, help="write the verdicts as JSON here")
    gate.set_defaults(func=run_gate)


def run_gate(args) -> int:
    """Judge, print and write the reports. Anything that keeps the gate from judging (bad
    input, an unreachable store) is exit status 2 with its sentence, written to the
    reports as well, so a CI page says why."""
    from contextlib import nullcontext

    from edgecomp.commands.ui import err_console
    from edgecomp.results.gate import GateConfig, GateReport, judge, load_config
    from edgecomp.results.select import choose, needs_store, only
    from edgecomp.results.store import Store

    # Filled in step by step, so that a report of a gate that could not judge says how
    # far it got.
    report = GateReport(baseline=args.baseline, candidate="", config=GateConfig())
    try:
        overrides = {flag: (section, key, getattr(args, _dest(flag)))
                     for flag, section, key, _ in LIMIT_FLAGS
                     if getattr(args, _dest(flag)) is not None}
        report = replace(report, config=load_config(args.config, overrides))
        with (Store() if needs_store(args.baseline, results=args.results)
              else nullcontext()) as store:
            baseline, candidate = choose(store, args.baseline, run=args.run, tag=args.tag,
                                         results=args.results)
        report = replace(report, baseline=baseline.name, candidate=candidate.name)
        checks = judge(only(baseline.records, model=args.model, target=args.target),
                       only(candidate.records, model=args.model, target=args.target),
                       report.config, baseline_name=baseline.name,
                       candidate_name=candidate.name)
        report = replace(report, checks=tuple(checks))
    except EdgecompError as exc:
        report = replace(report, problem=str(exc))
        err_console.print(f"[bold red]could not judge:[/bold red] {_escape(str(exc))}",
                          markup=True, highlight=False)
    _print(report)
    try:
        _write_reports(args, report)
    except EdgecompError as exc:
        err_console.print(f"[bold red]error:[/bold red] {_escape(str(exc))}", markup=True,
                          highlight=False)
        return 2
    return report.status


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# ---------------------------------------------------------------------------------------
# Reports


def _print(report) -> None:
    from rich.table import Table
    from rich.text import Text

    from edgecomp.commands.ui import console

    if report.problem is not None:
        return
    table = Table(title=Text(f"gate: {report.candidate} against {report.baseline}"),
                  title_justify="left")
    for column in ("artifact", "check", "baseline", "candidate", "change", "verdict"):
        table.add_column(column, justify="left" if column in ("artifact", "check",
                                                               "verdict") else "right")
    styles = {"pass": "green", "fail": "bold red", "new": "cyan", "not measured": "dim",
              "changed": "cyan"}
    for check in report.checks:
        table.add_row(Text(check.artifact), check.name, check.shown(check.baseline),
                      check.shown(check.candidate), check.shown_change(),
                      Text(check.verdict.value, style=styles.get(check.verdict.value,
                                                                 "yellow")))
    console.print(table)
    for check in report.checks:
        if check.verdict.value != "pass":
            console.print(Text(f"{check.verdict.value}: {check.artifact} {check.name}: "
                               f"{check.message}"))
    console.print(Text(f"gate: {report.outcome} ({_counts(report)})",
                       style="bold " + ("green", "red", "yellow")[report.status]))


def _counts(report) -> str:
    from collections import Counter

    counts = Counter(check.verdict.value for check in report.checks)
    return ", ".join(f"{n} {verdict}" for verdict, n in counts.most_common()) or "no checks"


def _write_reports(args, report) -> None:
    from edgecomp.atomic import atomic_write_json, atomic_write_text

    for path, write in ((args.junit, lambda p: atomic_write_text(p, junit_xml(report))),
                        (args.summary, lambda p: atomic_write_text(p, markdown(report))),
                        (args.json, lambda p: atomic_write_json(p, as_json(report)))):
        if path is None:
            continue
        try:
            write(path)
        except OSError as exc:
            raise InputError(f"cannot write {path} ({exc.strerror or exc}); choose a "
                             "writable place.") from exc


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def junit_xml(report) -> str:
    """One test case per artifact and check: a regression is a <failure>, could not
    judge (unstable, inconclusive, missing) an <error>, new and not measured <skipped>; a
    `changed` note passes with its sentence."""
    import xml.etree.ElementTree as ET

    def text(value: str) -> str:
        return _CONTROL.sub("?", value)  # XML 1.0 cannot hold control characters

    suites = ET.Element("testsuites", name="edgecomp gate")
    suite = ET.SubElement(suites, "testsuite", name=text(
        f"edgecomp gate: {report.candidate or 'candidate'} against {report.baseline}"))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("baseline", report.baseline), ("candidate", report.candidate),
                        ("outcome", report.outcome), ("exit_status", str(report.status))):
        ET.SubElement(properties, "property", name=name, value=text(value))
    cases = [(c.artifact, c.name, c.verdict.value, c.message) for c in report.checks]
    if report.problem is not None:
        cases = [("edgecomp gate", "inputs", "could not judge", report.problem)]
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for artifact, name, verdict, message in cases:
        case = ET.SubElement(suite, "testcase", classname=text(artifact), name=name, time="0")
        if verdict == "fail":
            element, counts["failures"] = "failure", counts["failures"] + 1
        elif verdict in ("unstable", "inconclusive", "missing", "could not judge"):
            element, counts["errors"] = "error", counts["errors"] + 1
        elif verdict in ("new", "not measured"):
            element, counts["skipped"] = "skipped", counts["skipped"] + 1
        else:
            case.set("status", "pass")
            ET.SubElement(case, "system-out").text = text(message)
            continue
        ET.SubElement(case, element, message=text(message), type=verdict).text = text(message)
    for element in (suites, suite):
        element.set("tests", str(len(cases)))
        for key, count in counts.items():
            element.set(key, str(count))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>|#~])")
_ICONS = {"pass": "✅", "fail": "❌", "unstable": "⚠️", "inconclusive": "⚠️", "missing": "⚠️",
          "new": "🆕", "not measured": "➖", "changed": "🔄"}


def markdown(report) -> str:
    """A summary for $GITHUB_STEP_SUMMARY: the outcome, then one table row per check."""
    def md(value: str) -> str:
        return _MARKDOWN.sub(r"\\\1", _CONTROL.sub("?", value)).replace("\n", " ")

    lines = [f"### edgecomp gate: {report.outcome}", ""]
    if report.problem is not None:
        return "\n".join(lines + [f"Could not judge: {md(report.problem)}", ""])
    lines += [f"Candidate {md(report.candidate)} against baseline {md(report.baseline)}: "
              f"{md(_counts(report))}.", "",
              "| artifact | check | baseline | candidate | change | verdict |",
              "|---|---|---:|---:|---:|---|"]
    for c in report.checks:
        lines.append(f"| {md(c.artifact)} | {c.name} | {c.shown(c.baseline)} | "
                     f"{c.shown(c.candidate)} | {c.shown_change()} | "
                     f"{_ICONS[c.verdict.value]} {c.verdict.value} |")
    notes = [c for c in report.checks if c.verdict.value != "pass"]
    if notes:
        lines += ["", *[f"- **{md(c.artifact)} {c.name}** ({c.verdict.value}): "
                        f"{md(c.message)}" for c in notes]]
    return "\n".join(lines) + "\n"


def as_json(report) -> dict:
    """The report for machines: outcome, exit status, thresholds and every check."""
    return {"outcome": report.outcome, "status": report.status, "problem": report.problem,
            "baseline": report.baseline, "candidate": report.candidate,
            "config": asdict(report.config),
            "checks": [{**asdict(check), "verdict": check.verdict.value}
                       for check in report.checks]}
