"""The gate's verdicts for CI: JUnit XML for a test tab, Markdown for $GITHUB_STEP_SUMMARY,
JSON for machines, each written where `edgecomp gate` was asked to put it.

Every renderer takes a `gate.GateReport`, judged or not: a gate that could not judge says
why in each report as well.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from edgecomp.atomic import atomic_write_json, atomic_write_text
from edgecomp.errors import InputError
from edgecomp.results.gate import GateReport

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def verdict_counts(report: GateReport) -> str:
    """How many checks reached each verdict, most first ("3 pass, 1 fail")."""
    found = Counter(check.verdict.value for check in report.checks)
    return ", ".join(f"{n} {verdict}" for verdict, n in found.most_common()) or "no checks"


def write_reports(report: GateReport, *, junit: Path | None = None,
                  summary: Path | None = None, json: Path | None = None) -> None:
    """Write the JUnit XML, Markdown summary and JSON reports asked for (None: not asked);
    a place that cannot be written is an InputError."""
    for path, write in ((junit, lambda p: atomic_write_text(p, junit_xml(report))),
                        (summary, lambda p: atomic_write_text(p, markdown(report))),
                        (json, lambda p: atomic_write_json(p, as_json(report)))):
        if path is None:
            continue
        try:
            write(path)
        except OSError as exc:
            raise InputError(f"cannot write {path} ({exc.strerror or exc}); choose a "
                             "writable place.") from exc


def junit_xml(report: GateReport) -> str:
    """One test case per artifact and check: a regression is a <failure>, could not
    judge (unstable, inconclusive, missing) an <error>, new and not measured <skipped>; a
    `changed` note passes with its sentence."""
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


def markdown(report: GateReport) -> str:
    """A summary for $GITHUB_STEP_SUMMARY: the outcome, then one table row per check."""
    def md(value: str) -> str:
        return _MARKDOWN.sub(r"\\\1", _CONTROL.sub("?", value)).replace("\n", " ")

    lines = [f"### edgecomp gate: {report.outcome}", ""]
    if report.problem is not None:
        return "\n".join(lines + [f"Could not judge: {md(report.problem)}", ""])
    lines += [f"Candidate {md(report.candidate)} against baseline {md(report.baseline)}: "
              f"{md(verdict_counts(report))}.", "",
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


def as_json(report: GateReport) -> dict:
    """The report for machines: outcome, exit status, thresholds and every check."""
    return {"outcome": report.outcome, "status": report.status, "problem": report.problem,
            "baseline": report.baseline, "candidate": report.candidate,
            "config": asdict(report.config),
            "checks": [{**asdict(check), "verdict": check.verdict.value}
                       for check in report.checks]}
