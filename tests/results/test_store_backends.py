"""The store on both servers: the same API against SQLite and a real PostgreSQL, and
PostgreSQL's own migrations, concurrency and errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import psycopg
import pytest

from edgecomp.cli import main
from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.store import (MIGRATIONS, SCHEMA_VERSION, Store, parse_since, postgres,
                                    schema)
from tests.results.records import as_recorded, record
from tests.results.test_store_reliability import ROOT, run_writers


def tagged(model: str, *, tag: str | None = None, branch: str | None = None,
           technique: str = "none", created_at: str = "2026-01-01T00:00:00+00:00",
           seed: int = 0):
    git = {"commit": "c0ffee" + model, "branch": branch, "dirty": False} if branch else None
    return dataclasses.replace(record(model, seed=seed), tag=tag, git=git,
                               technique=technique, created_at=created_at)


def test_round_trip_and_filters_are_the_same_on_both_servers(results_db):
    first = [tagged("a", tag="base", branch="main"), tagged("b", tag="base", branch="main",
                                                          technique="pruned")]
    second = [tagged("a", tag="next", branch="feat/x", created_at="2026-03-01T00:00:00+00:00",
                     seed=1)]
    failed = [dataclasses.replace(record("c", error="board lost"), tag="next")]
    with Store() as store:
        base_run = store.add_run(first, command="edgecomp deploy --tag base")
        next_run = store.add_run(second, command="edgecomp bench --tag next")
        store.add_run(failed, command="edgecomp bench")
        assert as_recorded(store.records(with_samples=True)) == first + second
        assert {r.run_id for r in store.records(tag="base")} == {base_run}
        assert [r.model for r in store.records(technique="pruned")] == ["b"]
        assert [r.run_id for r in store.records(branch="feat/x")] == [next_run]
        assert [r.model for r in store.records(since="2026-02-01T00:00:00+00:00")] == ["a"]
        assert [r.model for r in store.records(run_id=base_run)] == ["a", "b"]
        assert [r.model for r in store.records(include_failed=True, tag="next")] == ["a", "c"]
        assert store.records()[0].git["branch"] == "main"
        runs = store.runs()
        assert [(r.id, r.tag, r.git_branch, r.results) for r in runs[:2]] == [
            (base_run, "base", "main", 2), (next_run, "next", "feat/x", 1)]
        assert [r.id for r in store.runs(tag="next")] == [next_run, runs[2].id]
        assert [r.id for r in store.runs(branch="main")] == [base_run]
        assert [r.id for r in store.runs(command="bench")] == [next_run, runs[2].id]
        assert store.version == SCHEMA_VERSION


def test_eighty_five_thousand_samples_come_back_exactly_from_postgresql(postgres_url):
    original = record(samples=85_000, seed=7)
    with Store(postgres_url) as store:
        store.add_run([original], command="bench")
        (back,) = store.records(with_samples=True)
        assert store.records()[0].samples_ms == []
    assert back.samples_ms == original.samples_ms  # float64, every bit


def test_sixteen_processes_creating_one_new_postgresql_database_all_record(postgres_url):
    run_writers(postgres_url, count=16, samples=100)
    with Store(postgres_url) as store:
        assert sorted(r.model for r in store.records()) == sorted(
            f"model-{i}-0" for i in range(16))
        assert store.version == SCHEMA_VERSION


def test_sixteen_writers_of_large_runs_lose_nothing_on_postgresql(postgres_url):
    with Store(postgres_url) as store:
        store.add_run([record("before")], command="bench")
    reader = psycopg.connect(postgres_url)  # a long read open the whole time
    reader.execute("SELECT COUNT(*) FROM results").fetchone()
    try:
        run_writers(postgres_url, count=16, samples=85_000, per_run=4, within_s=120)
    finally:
        reader.close()
    with Store(postgres_url) as store:
        back = store.records(with_samples=True)
    assert sorted(r.model for r in back) == sorted(
        {f"model-{i}-{k}" for i in range(16) for k in range(4)} | {"before"})
    for r in back[1:]:
        assert r.samples_ms == record(r.model, samples=85_000,
                                      seed=int(r.model.split("-")[1])).samples_ms


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        return {row[0] for row in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}


def columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as db:
        return {row[0] for row in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            (table,))}


def test_a_postgresql_migration_that_fails_midway_leaves_the_old_schema(postgres_url,
                                                                       monkeypatch):
    def breaks_after_the_alter(db):
        db.execute("ALTER TABLE runs ADD COLUMN tag TEXT")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS[:3], breaks_after_the_alter])
    with pytest.raises(RuntimeError, match="interrupted"):
        Store(postgres_url)
    assert "tag" not in columns(postgres_url, "runs")  # nothing of the half-done step
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM edgecomp_schema").fetchone()[0] == 3
    monkeypatch.undo()
    with Store(postgres_url) as store:
        assert store.version == SCHEMA_VERSION
        store.add_run([record()], command="bench")
        assert len(store.records()) == 1


KILLED = """
import os, sys
sys.path.insert(0, {root!r})
from edgecomp.results import store
from edgecomp.results.store import schema

def dies_in_the_middle(db):
    db.execute("CREATE TABLE half_done (x INTEGER)")
    os._exit(3)

schema.MIGRATIONS = [schema.MIGRATIONS[0], dies_in_the_middle]
store.Store({url!r})
"""


def test_a_process_killed_inside_a_postgresql_migration_leaves_the_old_schema(postgres_url):
    done = subprocess.run([sys.executable, "-c", KILLED.format(root=str(ROOT), url=postgres_url)],
                          capture_output=True, timeout=60)
    assert done.returncode == 3, done.stderr
    # Version 1 was committed; the server rolled the killed second step back.
    assert tables(postgres_url) == {"runs", "results", "edgecomp_schema"}
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM edgecomp_schema").fetchone()[0] == 1
    with Store(postgres_url) as store:
        assert store.version == SCHEMA_VERSION
    assert {"runs", "results", "samples", "edgecomp_schema"} <= tables(postgres_url)


def test_an_open_waiting_on_another_migration_past_the_timeout_is_one_sentence(postgres_url):
    holder = psycopg.connect(postgres_url, autocommit=True)
    holder.execute("BEGIN")
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (postgres._MIGRATION_LOCK,))
    try:
        with pytest.raises(EdgecompError, match="locked by another edgecomp process"):
            Store(postgres_url, timeout_s=0.5)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert tables(postgres_url) == set()


def test_a_server_that_is_down_is_one_sentence_without_the_password(postgres_server):
    url = f"postgresql://edgecomp:s3cret@127.0.0.1:{postgres_server.port + 1}/nothing"
    with pytest.raises(EdgecompError, match="cannot connect to the PostgreSQL") as caught:
        Store(url, timeout_s=2)
    assert "s3cret" not in str(caught.value) and "edgecomp:***@" in str(caught.value)


def test_a_malformed_url_is_one_sentence():
    with pytest.raises(InputError, match="not a PostgreSQL URL"):
        Store("postgresql://a b c/?sslmode=sometimes", timeout_s=2)


def test_the_cli_against_a_down_server_prints_one_line(postgres_server, monkeypatch, capsys):
    monkeypatch.setenv("EDGECOMP_DB", f"postgresql://edgecomp@127.0.0.1:"
                                      f"{postgres_server.port + 1}/x")
    assert main(["compare"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the PostgreSQL results database" in err
    assert "Traceback" not in err


def test_since_takes_dates_times_and_ages():
    assert parse_since("2026-11-01") == "2026-11-01T00:00:00+00:00"
    assert parse_since("2026-11-01T08:30+02:00") == "2026-11-01T06:30:00+00:00"
    assert parse_since("7d") < parse_since("12h") < parse_since("90m")
    with pytest.raises(InputError, match="neither a date"):
        parse_since("last tuesday")
