"""Naming a set of results: a SPEC (run:ID, branch:NAME, tag:NAME, file:PATH, a file or a
tag) read from the store or a JSON file, shared by `edgecomp gate` and `compare --baseline`."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp.errors import InputError
from edgecomp.results.record import ResultRecord

if TYPE_CHECKING:
    from edgecomp.results.store import Store

SPECS = """\
baseline SPEC:
  run:ID        the records of one stored run
  branch:NAME   the latest stored run made on git branch NAME (for gate, other than the
                candidate)
  tag:NAME      the newest record of each artifact in the runs tagged NAME
                (deploy/bench --tag NAME)
  file:PATH     a JSON file written by deploy/bench/compare --json (raw samples kept)
  PATH          an existing file, or a name ending in .json, is a file too
  NAME          anything else is a tag"""

MAX_RESULTS_BYTES = 2**30  # a results file holds raw samples: 85k a fast model's 5 s run


class Kind(enum.StrEnum):
    """Where a SPEC's records come from."""

    RUN = "run"
    BRANCH = "branch"
    TAG = "tag"
    FILE = "file"


@dataclass(frozen=True)
class RecordSet:
    """One named set of results: what it is called and its records, oldest first."""

    name: str
    records: list[ResultRecord]
    runs: frozenset[str] = frozenset()  # the store's runs it came from (none for a file)


def baseline_kind(spec: str) -> tuple[Kind, str]:
    """(kind, value) of a SPEC: run, branch, tag or file (see SPECS)."""
    for kind in Kind:
        if spec.startswith(f"{kind}:"):
            value = spec[len(kind) + 1:]
            if not value:
                raise InputError(f"--baseline {spec!r} names no {kind}; write {kind}:NAME.")
            return kind, value
    if Path(spec).exists() or spec.endswith(".json"):
        return Kind.FILE, spec
    return Kind.TAG, spec


def needs_store(baseline: str, *, results: Path | None) -> bool:
    """Whether `choose` reads the store: not when both sides are files."""
    return baseline_kind(baseline)[0] is not Kind.FILE or results is None


def resolve(store: Store, spec: str, *, with_samples: bool = True) -> RecordSet:
    """The records a SPEC names, from the store or from its file."""
    kind, value = baseline_kind(spec)
    if kind is Kind.FILE:
        return from_file(Path(value), "baseline")
    return from_store(store, kind, value, exclude=frozenset(), with_samples=with_samples)


def choose(store: Store | None, baseline: str, *, run: str | None = None,
           tag: str | None = None, results: Path | None = None) -> tuple[RecordSet, RecordSet]:
    """The baseline (a SPEC) and the candidate (a stored run, the runs tagged `tag`, a
    `results` file, or else the latest run that is not the baseline's). A branch baseline
    is the branch's latest run other than the candidate; with a branch baseline the
    default candidate is simply the latest run. `store` may be None where `needs_store`
    says so."""
    kind, value = baseline_kind(baseline)
    candidate = None
    if results:
        candidate = from_file(results, "candidate")
    elif run or tag:
        candidate = from_store(store, Kind.RUN if run else Kind.TAG, run or tag,
                               exclude=frozenset())
    elif kind is Kind.BRANCH:
        candidate = latest_run(store, exclude=frozenset())
    if kind is Kind.FILE:
        chosen = from_file(Path(value), "baseline")
    else:
        chosen = from_store(store, kind, value,
                            exclude=candidate.runs if candidate else frozenset())
    if candidate is None:
        candidate = latest_run(store, exclude=chosen.runs)
    if chosen.runs & candidate.runs:
        raise InputError(f"the candidate ({candidate.name}) and the baseline "
                         f"({chosen.name}) share a run; name another with --run, --tag "
                         "or --results.")
    return chosen, candidate


def only(records: list[ResultRecord], *, model: str | None = None,
         target: str | None = None, technique: str | None = None) -> list[ResultRecord]:
    """The records of this model, target and technique (each where given)."""
    return [r for r in records if (not model or r.model == model)
            and (not target or r.target == target)
            and (not technique or r.technique == technique)]


def from_store(store: Store, kind: Kind, value: str, *, exclude: frozenset[str],
               with_samples: bool = True) -> RecordSet:
    """The records of run, tag or branch `value` (a branch: its latest run not in
    `exclude`), failed ones included."""
    if kind is Kind.BRANCH:
        runs = [run for run in store.runs(branch=value) if run.id not in exclude]
        if not runs:
            raise InputError(f"no run recorded on git branch {value!r} in {store.location}"
                             + (" besides the candidate" if exclude else "")
                             + "; measure one there first (deploy or bench record the branch).")
        kind, value = Kind.RUN, runs[-1].id
    records = store.records(run_id=value if kind is Kind.RUN else None,
                            tag=value if kind is Kind.TAG else None,
                            include_failed=True, with_samples=with_samples)
    if not records:
        known = [r.tag if kind is Kind.TAG else r.id for r in store.runs()]
        known = list(dict.fromkeys(k for k in reversed(known) if k))[:5]
        raise InputError(f"no {kind} {value!r} in the results store {store.location}"
                         + (f" (latest: {', '.join(known)})" if known else " (it is empty)")
                         + "; tag a run with deploy/bench --tag NAME.")
    runs = frozenset(r.run_id for r in records if r.run_id)
    return RecordSet(_describe(store, kind, value, runs), records, runs)


def latest_run(store: Store, *, exclude: frozenset[str]) -> RecordSet:
    """The records of the latest stored run not in `exclude`."""
    runs = [run for run in store.runs() if run.id not in exclude]
    if not runs:
        raise InputError(f"the results store {store.location} holds no run to judge besides "
                         "the baseline; measure one with deploy or bench, or pass --results.")
    return from_store(store, Kind.RUN, runs[-1].id, exclude=frozenset())


def _describe(store: Store, kind: Kind, value: str, runs: frozenset[str]) -> str:
    if kind is Kind.TAG:
        return f"tag {value} ({len(runs)} run{'s' if len(runs) != 1 else ''})"
    (run,) = [r for r in store.runs() if r.id == value] or [None]
    if run is None:
        return f"run {value}"
    git = f", {run.git_branch or 'detached'}@{run.git_commit[:10]}" if run.git_commit else ""
    tag = f", tag {run.tag}" if run.tag else ""
    return f"run {run.id} ({' '.join(run.command.split()[:2])}, {run.created_at}{tag}{git})"


def from_file(path: Path, side: str) -> RecordSet:
    """Records from a JSON list as deploy/bench/compare --json write it; `side` (baseline,
    candidate) names the file in errors."""
    from edgecomp.model.untrusted import read_regular

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
    records = [ResultRecord.from_json(item, source=f"{path}: result {index}")
               for index, item in enumerate(items)]
    if not records:
        raise InputError(f"the {side} results file {path} holds no results.")
    return RecordSet(f"file {path}", records)
