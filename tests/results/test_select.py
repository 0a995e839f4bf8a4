"""Naming a set of results: the SPEC spellings, and sets read from the store and from files."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edgecomp.errors import InputError
from edgecomp.results.select import (
    Kind,
    baseline_kind,
    choose,
    needs_store,
    only,
    resolve,
)
from edgecomp.results.store import Store
from tests.results.records import record


@pytest.mark.parametrize("spec, kind, value", [
    ("run:abc", Kind.RUN, "abc"),
    ("branch:feat/x", Kind.BRANCH, "feat/x"),
    ("tag:run:1", Kind.TAG, "run:1"),
    ("file:base", Kind.FILE, "base"),
    ("base.json", Kind.FILE, "base.json"),
    ("v1", Kind.TAG, "v1"),
])
def test_each_spelling_names_its_kind(spec, kind, value):
    assert baseline_kind(spec) == (kind, value)


def test_an_existing_path_is_a_file_and_an_empty_name_is_refused(tmp_path):
    assert baseline_kind(str(tmp_path)) == (Kind.FILE, str(tmp_path))
    with pytest.raises(InputError, match="names no branch; write branch:NAME"):
        baseline_kind("branch:")


def test_two_files_are_compared_without_a_store(tmp_path):
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps([record("a").to_json()]))
    new.write_text(json.dumps([record("a", seed=1).to_json()]))
    assert not needs_store(str(base), results=new)
    baseline, candidate = choose(None, str(base), results=new)
    assert (baseline.name, candidate.name) == (f"file {base}", f"file {new}")
    assert baseline.runs == candidate.runs == frozenset()


def test_a_stored_run_keeps_its_runs_and_only_filters(results_db):
    with Store() as store:
        run = store.add_run([record("a"), dataclasses.replace(record("b"), target="pi4")],
                            command="edgecomp bench")
        chosen = resolve(store, f"run:{run}", with_samples=False)
    assert chosen.runs == {run} and chosen.name.startswith(f"run {run} (edgecomp bench, ")
    assert not any(r.samples_ms for r in chosen.records)
    assert [r.model for r in only(chosen.records, target="pi4")] == ["b"]
    assert only(chosen.records, model="a", technique="int8") == []
