"""`edgecomp gate`: judge a run against a baseline for CI, exit 0 pass, 1 regression, 2
could not judge; the terminal table here, the JUnit, Markdown and JSON reports written by
`results.ci`, and the HTML report (`results.report`) with the verdict at its top."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from edgecomp.commands import args as shared
from edgecomp.errors import EdgecompError
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
    shared.add_output_arg(gate, "--junit", folder=False, metavar="XML",
                          help="write JUnit XML here")
    shared.add_output_arg(gate, "--summary", folder=False, metavar="MD",
                          help="write a Markdown summary here (e.g. \"$GITHUB_STEP_SUMMARY\")")
    shared.add_output_arg(gate, "--json", folder=False, help="write the verdicts as JSON here")
    shared.add_output_arg(gate, "--report", folder=False, metavar="HTML",
                          help="write the HTML report of the candidate's results here, the "
                               "verdict and the failed checks at its top")
    gate.set_defaults(func=run_gate)


def run_gate(args) -> int:
    """Judge, print and write the reports. Anything that keeps the gate from judging (bad
    input, an unreachable store) is exit status 2 with its sentence, written to the
    reports as well, so a CI page says why."""
    from contextlib import nullcontext

    from rich.text import Text

    from edgecomp.commands.ui import err_console, shown
    from edgecomp.results.ci import write_reports
    from edgecomp.results.gate import GateReport, judge
    from edgecomp.results.verdicts import GateConfig, load_config
    from edgecomp.results.select import choose, needs_store, only
    from edgecomp.results.store import Store

    # Filled in step by step, so that a report of a gate that could not judge says how
    # far it got.
    report = GateReport(baseline=args.baseline, candidate="", config=GateConfig())
    judged: list = []  # the candidate's records the verdict is about, for --report
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
        judged = only(candidate.records, model=args.model, target=args.target)
        checks = judge(only(baseline.records, model=args.model, target=args.target), judged,
                       report.config, baseline_name=baseline.name,
                       candidate_name=candidate.name)
        report = replace(report, checks=tuple(checks))
    except EdgecompError as exc:
        report = replace(report, problem=str(exc))
        err_console.print(Text("could not judge:", style="bold red"), shown(str(exc)),
                          highlight=False, soft_wrap=True)
    _print(report)
    try:
        write_reports(report, junit=args.junit, summary=args.summary, json=args.json)
        if args.report is not None:
            _write_html(args.report, report, judged, args)
    except EdgecompError as exc:
        err_console.print(Text("error:", style="bold red"), shown(str(exc)), highlight=False,
                          soft_wrap=True)
        return 2
    return report.status


def _write_html(path: Path, report, records: list, args) -> None:
    """The HTML report of the judged records with the gate's verdict at its top."""
    from edgecomp.errors import InputError
    from edgecomp.results.report import write_report

    filters = [f"{flag} {value}" for flag, value in (("--model", args.model),
                                                      ("--target", args.target)) if value]
    try:
        write_report(path, records, gate=report, title="edgecomp gate report",
                     source=f"{report.candidate or 'the candidate'} against {report.baseline}",
                     filters=filters)
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror or exc}); choose a writable "
                         "place.") from exc


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _print(report) -> None:
    """The verdicts as a table on the terminal, then every check that did not pass."""
    from rich.table import Table
    from rich.text import Text

    from edgecomp.commands.ui import console, shown
    from edgecomp.results.ci import verdict_counts

    if report.problem is not None:
        return
    table = Table(title=shown(f"gate: {report.candidate} against {report.baseline}"),
                  title_justify="left")
    for column in ("artifact", "check", "baseline", "candidate", "change", "verdict"):
        table.add_column(column, justify="left" if column in ("artifact", "check",
                                                               "verdict") else "right")
    styles = {"pass": "green", "fail": "bold red", "new": "cyan", "not measured": "dim",
              "changed": "cyan"}
    for check in report.checks:
        table.add_row(shown(check.artifact), check.name, check.shown(check.baseline),
                      check.shown(check.candidate), check.shown_change(),
                      Text(check.verdict.value, style=styles.get(check.verdict.value,
                                                                 "yellow")))
    console.print(table)
    for check in report.checks:
        if check.verdict.value != "pass":
            console.print(shown(f"{check.verdict.value}: {check.artifact} {check.name}: "
                                f"{check.message}"), soft_wrap=True)
    console.print(Text(f"gate: {report.outcome} ({verdict_counts(report)})",
                       style="bold " + ("green", "red", "yellow")[report.status]))
