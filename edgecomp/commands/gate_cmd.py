"""`edgecomp gate`: judge a run against a baseline for CI, exit 0 pass, 1 regression, 2
could not judge; JUnit, Markdown and JSON reports beside the terminal table."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.record import ResultRecord

BASELINES = """\
baseline SPEC:
  run:ID        the records of one stored run
  branch:NAME   the latest stored run made on git branch NAME (other than the candidate)
  tag:NAME      the newest record of each artifact in the runs tagged NAME
                (deploy/bench --tag NAME)
  file:PATH     a JSON file written by deploy/bench/compare --json (raw samples kept)
  PATH          an existing file, or a name ending in .json, is a file too
  NAME          anything else is a tag

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
MAX_RESULTS_BYTES = 2**30  # a results file holds raw samples: 85k a fast model's 5 s run


def add_parser(subparsers) -> None:
    gate = subparsers.add_parser(
        "gate", help="judge a run against a baseline: exit 0 pass, 1 regression, 2 could "
                     "not judge",
        description="Compare each artifact's latency (p50 and p90: a Mann-Whitney test and\n"
                    "a block-bootstrap interval on the raw samples, against a tolerance),\n"
                    "accuracy, agreement, size, peak memory and energy with a baseline's.",
        epilog=BASELINES, formatter_class=argparse.RawDescriptionHelpFormatter)
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


@dataclass(frozen=True)
class RecordSet:
    """One side of the comparison: what it is called and its records, oldest first."""

    name: str
    records: list[ResultRecord]
    runs: frozenset[str] = frozenset()  # the store's runs it came from


def run_gate(args) -> int:
    """Judge, print and write the reports. Anything that keeps the gate from judging (bad
    input, an unreachable store) is exit status 2 with its sentence, written to the
    reports as well, so a CI page says why."""
    from edgecomp.commands.ui import err_console
    from edgecomp.results.gate import GateConfig, GateReport, judge, load_config

    # Filled in step by step, so that a report of a gate that could not judge says how
    # far it got.
    report = GateReport(baseline=args.baseline, candidate="", config=GateConfig())
    try:
        overrides = {flag: (section, key, getattr(args, _dest(flag)))
                     for flag, section, key, _ in LIMIT_FLAGS
                     if getattr(args, _dest(flag)) is not None}
        report = replace(report, config=load_config(args.config, overrides))
        baseline, candidate = _choose(args)
        report = replace(report, baseline=baseline.name, candidate=candidate.name)
        checks = judge(_only(args, baseline.records), _only(args, candidate.records),
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


def _only(args, records: list[ResultRecord]) -> list[ResultRecord]:
    return [r for r in records if (not args.model or r.model == args.model)
            and (not args.target or r.target == args.target)]


# ---------------------------------------------------------------------------------------
# Choosing the two sides


def baseline_kind(spec: str) -> tuple[str, str]:
    """(kind, value) of a --baseline SPEC: run, branch, tag or file (see BASELINES)."""
    for kind in ("run", "branch", "tag", "file"):
        if spec.startswith(kind + ":"):
            value = spec[len(kind) + 1:]
            if not value:
                raise InputError(f"--baseline {spec!r} names no {kind}; write {kind}:NAME.")
            return kind, value
    if Path(spec).exists() or spec.endswith(".json"):
        return "file", spec
    return "tag", spec


def _choose(args) -> tuple[RecordSet, RecordSet]:
    """The baseline and the candidate. A branch baseline is the branch's latest run other
    than the candidate; the default candidate is the latest run that is not the
    baseline's (for a branch baseline, simply the latest run)."""
    from contextlib import nullcontext

    kind, value = baseline_kind(args.baseline)
    with _store() if kind != "file" or not args.results else nullcontext() as store:
        candidate = None
        if args.results:
            candidate = _from_file(args.results, "candidate")
        elif args.run or args.tag:
            candidate = _from_store(store, "run" if args.run else "tag", args.run or args.tag,
                                    exclude=frozenset())
        elif kind == "branch":
            candidate = _latest(store, exclude=frozenset())
        if kind == "file":
            baseline = _from_file(Path(value), "baseline")
        else:
            baseline = _from_store(store, kind, value,
                                   exclude=candidate.runs if candidate else frozenset())
        if candidate is None:
            candidate = _latest(store, exclude=baseline.runs)
    if baseline.runs & candidate.runs:
        raise InputError(f"the candidate ({candidate.name}) and the baseline "
                         f"({baseline.name}) share a run; name another with --run, --tag "
                         "or --results.")
    return baseline, candidate


def _store():
    from edgecomp.results.store import Store

    return Store()


def _from_store(store, kind: str, value: str, *, exclude: frozenset[str]) -> RecordSet:
    """The records of `kind` run/tag/branch `value` from the store."""
    if kind == "branch":
        runs = [run for run in store.runs(branch=value) if run.id not in exclude]
        if not runs:
            raise InputError(f"no run recorded on git branch {value!r} in {store.location}"
                             + (" besides the candidate" if exclude else "")
                             + "; measure one there first (deploy or bench record the branch).")
        kind, value = "run", runs[-1].id
    records = store.records(run_id=value if kind == "run" else None,
                            tag=value if kind == "tag" else None,
                            include_failed=True, with_samples=True)
    if not records:
        known = [r.tag if kind == "tag" else r.id for r in store.runs()]
        known = list(dict.fromkeys(k for k in reversed(known) if k))[:5]
        raise InputError(f"no {kind} {value!r} in the results store {store.location}"
                         + (f" (latest: {', '.join(known)})" if known else " (it is empty)")
                         + "; tag a run with deploy/bench --tag NAME.")
    runs = frozenset(r.run_id for r in records if r.run_id)
    return RecordSet(_describe(store, kind, value, runs), records, runs)


def _latest(store, *, exclude: frozenset[str]) -> RecordSet:
    runs = [run for run in store.runs() if run.id not in exclude]
    if not runs:
        raise InputError(f"the results store {store.location} holds no run to judge besides "
                         "the baseline; measure one with deploy or bench, or pass --results.")
    return _from_store(store, "run", runs[-1].id, exclude=frozenset())


def _describe(store, kind: str, value: str, runs: frozenset[str]) -> str:
    if kind == "tag":
        return f"tag {value} ({len(runs)} run{'s' if len(runs) != 1 else ''})"
    (run,) = [r for r in store.runs() if r.id == value] or [None]
    if run is None:
        return f"run {value}"
    git = f", {run.git_branch or 'detached'}@{run.git_commit[:10]}" if run.git_commit else ""
    tag = f", tag {run.tag}" if run.tag else ""
    return f"run {run.id} ({' '.join(run.command.split()[:2])}, {run.created_at}{tag}{git})"


def _from_file(path: Path, side: str) -> RecordSet:
    """Records from a JSON list as deploy/bench/compare --json write it."""
    from edgecomp.config import validate
    from edgecomp.untrusted import read_regular

    data = read_regular(path, what=f"the {side} results file", max_bytes=MAX_RESULTS_BYTES)

    def refuse(constant: str):
        raise ValueError(f"{constant} is not a JSON number")

    try:
        items = json.loads(data, parse_constant=refuse)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the {side} results file {path} is not valid JSON ({exc}); give "
                         "a file written by deploy, bench or compare --json.") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InputError(f"the {side} results file {path} is not a list of results; give a "
                         "file written by deploy, bench or compare --json.")
    records = [validate(item, ResultRecord, source=f"{path}: result {index}")
               for index, item in enumerate(items)]
    if not records:
        raise InputError(f"the {side} results file {path} holds no results.")
    return RecordSet(f"file {path}", records)


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
    styles = {"pass": "green", "fail": "bold red", "new": "cyan", "not measured": "dim"}
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
    judge (unstable, inconclusive, missing) an <error>, new and not measured <skipped>."""
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
          "new": "🆕", "not measured": "➖"}


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
