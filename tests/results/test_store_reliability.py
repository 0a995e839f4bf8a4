"""The results store under interruption and contention, and its compact raw samples."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecomp.errors import EdgecompError
from edgecomp.results import store as store_module
from edgecomp.results.record import ResultRecord
from edgecomp.results.store import MIGRATIONS, SCHEMA_VERSION, Store
from edgecomp.results.store import schema as schema_module
from tests.results.records import as_recorded, record

ROOT = Path(__file__).resolve().parents[2]


def schema(path: Path) -> tuple[int, set[str], set[str]]:
    """(user_version, table names, results columns) as a fresh connection sees them."""
    db = sqlite3.connect(path)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    finally:
        db.close()
    return version, tables, columns


def version_one(path: Path) -> None:
    db = sqlite3.connect(path)
    MIGRATIONS[0](store_module.SQLite(db))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_a_migration_that_fails_midway_leaves_the_old_schema(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    version_one(path)

    def breaks_after_the_alter(db):
        db.execute("ALTER TABLE results ADD COLUMN energy_mj REAL")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(schema_module, "MIGRATIONS", [MIGRATIONS[0], breaks_after_the_alter])
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", 2)
    with pytest.raises(RuntimeError, match="interrupted"):
        Store(path)
    version, _, columns = schema(path)
    assert version == 1 and "energy_mj" not in columns  # nothing of the half-done step
    monkeypatch.undo()
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION
        store.add_run([record()], command="bench")
        assert len(store.records()) == 1


# A process killed inside a migration (no ROLLBACK runs, no Python cleanup at all).
KILLED_MIGRATION = """
import os, sys
sys.path.insert(0, {root!r})
from edgecomp.results import store
from edgecomp.results.store import schema

def dies_after_the_alter(db):
    db.execute("ALTER TABLE results ADD COLUMN energy_mj REAL")
    os._exit(3)

schema.MIGRATIONS = [schema.MIGRATIONS[0], dies_after_the_alter]
schema.SCHEMA_VERSION = 2
store.Store({path!r})
"""


def test_a_process_killed_inside_a_migration_leaves_the_old_schema(tmp_path):
    path = tmp_path / "r.db"
    version_one(path)
    child = subprocess.run([sys.executable, "-c", KILLED_MIGRATION.format(
        root=str(ROOT), path=str(path))], capture_output=True, text=True, timeout=60)
    assert child.returncode == 3, child.stderr
    version, _, columns = schema(path)
    assert version == 1 and "energy_mj" not in columns
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION


def old_format_database(path: Path, records: list[ResultRecord]) -> None:
    """A version-2 database as edgecomp wrote it before v3: samples inside record_json."""
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:2]:
        migration(store_module.SQLite(db))
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO runs VALUES ('r1', 'now', 'deploy', '{}')")
    for r in records:
        db.execute("INSERT INTO results (run_id, created_at, model, technique, target, format,"
                   " precision, size_bytes, p50_ms, ok, error, artifact_sha256, record_json)"
                   " VALUES ('r1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (r.created_at, r.model, r.technique, r.target, r.format, r.precision,
                    r.size_bytes, r.latency_ms.p50 if r.ok else None, int(r.ok), r.error,
                    r.artifact_sha256, json.dumps(r.to_json())))
    db.commit()
    db.close()


def test_version_three_moves_old_samples_out_of_the_json(tmp_path):
    path = tmp_path / "r.db"
    old = [record("a", samples=3000, seed=1), record("b", error="lost the board"),
           record("c", samples=10, seed=2)]
    old_format_database(path, old)
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION
        assert as_recorded(store.records(include_failed=True, with_samples=True)) == old
        assert [r.samples_ms for r in store.records(include_failed=True)] == [[], [], []]
        texts = [row[0] for row in store.db.execute("SELECT record_json FROM results")]
    assert all("samples_ms" not in json.loads(text) for text in texts)


def test_samples_round_trip_exactly_and_the_default_read_skips_them(tmp_path):
    original, failed = record(samples=85_000, seed=3), record("failed", error="timeout")
    with Store(tmp_path / "r.db") as store:
        store.add_run([original, failed], command="bench")
        statements: list[str] = []
        store.db.raw.set_trace_callback(statements.append)
        plain = store.records(include_failed=True)
        assert statements and not any("samples" in sql for sql in statements)
        store.db.raw.set_trace_callback(None)
        full = store.records(include_failed=True, with_samples=True)
        (json_bytes,) = store.db.execute("SELECT length(record_json) FROM results"
                                         " WHERE model = 'm'").fetchone()
    assert [r.samples_ms for r in plain] == [[], []]
    assert as_recorded(plain)[0] == dataclasses.replace(original, samples_ms=[])
    assert full[0].samples_ms == original.samples_ms  # float64: every bit kept
    assert as_recorded(full) == [original, failed]
    assert json_bytes < 5_000  # the 85k samples are not in the JSON


def test_a_write_blocked_past_the_timeout_is_one_sentence_and_writes_nothing(tmp_path):
    path = tmp_path / "r.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of its write
    try:
        with Store(path, timeout_s=0.2) as store:
            assert store.records() == []  # readers do not wait for a writer
            with pytest.raises(EdgecompError, match="locked by another edgecomp process"):
                store.add_run([record()], command="bench")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store(path) as store:
        assert store.records() == []
        assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_an_open_blocked_by_a_migration_past_the_timeout_is_one_sentence(tmp_path):
    path = tmp_path / "r.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process creating the schema
    try:
        with pytest.raises(EdgecompError, match="locked by another edgecomp process"):
            Store(path, timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# One writer process: says it is ready, waits for its stdin to close (all are released at
# once), then records one run of `per_run` records (a demo deploy records four artifacts).
WRITER = """
import sys
sys.path.insert(0, {root!r})
from tests.results.records import as_recorded, record
from edgecomp.results.store import Store

index = int(sys.argv[1])
run = [record(f"model-{{index}}-{{k}}", samples={samples}, seed=index) for k in range({per_run})]
print("ready", flush=True)
sys.stdin.read()
with Store({path!r}) as store:
    store.add_run(run, command=f"writer {{index}}")
"""


def run_writers(path: Path, *, count: int, samples: int, per_run: int = 1,
                within_s: float = 120) -> None:
    """Start `count` writer processes, release them together, and check that each recorded
    its run within `within_s` seconds, without an error."""
    script = WRITER.format(root=str(ROOT), samples=samples, per_run=per_run, path=str(path))
    children = [subprocess.Popen([sys.executable, "-c", script, str(i)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(count)]
    try:
        for child in children:
            assert child.stdout.readline() == "ready\n", child.communicate()[1]
        for child in children:
            child.stdin.close()
        deadline = time.monotonic() + within_s
        for child in children:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        failures = [(child.returncode, child.stderr.read()) for child in children
                    if child.returncode != 0]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
            child.stderr.close()
    assert failures == []


def test_sixteen_processes_creating_one_new_database_all_record(tmp_path):
    path = tmp_path / "new.db"
    run_writers(path, count=16, samples=100)
    with Store(path) as store:
        assert sorted(r.model for r in store.records()) == sorted(
            f"model-{i}-0" for i in range(16))
        assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 16


def test_sixteen_writers_of_large_runs_lose_nothing_beside_a_long_read(tmp_path):
    path = tmp_path / "r.db"
    with Store(path) as store:
        store.add_run([record("before")], command="bench")
    # A reader in the middle of a long read (a `compare` of a big database) the whole time.
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM results").fetchone()
    try:
        run_writers(path, count=16, samples=85_000, per_run=4, within_s=60)
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    with Store(path) as store:
        back = store.records(with_samples=True)
    expected = {f"model-{i}-{k}" for i in range(16) for k in range(4)} | {"before"}
    assert sorted(r.model for r in back) == sorted(expected)
    for r in back[1:]:
        seed = int(r.model.split("-")[1])
        assert r.samples_ms == record(r.model, samples=85_000, seed=seed).samples_ms


def test_an_uncreatable_folder_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(EdgecompError, match="cannot create the folder"):
        Store(tmp_path / "file" / "r.db")


@pytest.mark.slow
def test_a_deploy_killed_while_it_works_leaves_no_partial_row(tmp_path):
    """kill -9 between the first artifact and the last: the run's rows arrive in one
    transaction at the end, so the database holds none of them and still opens."""
    import os
    import signal

    db, out = tmp_path / "r.db", tmp_path / "out"
    env = {**os.environ, "EDGECOMP_DB": str(db), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "edgecomp.cli", "deploy", "--runs", "5", "--seconds", "0",
         "--warmup-seconds", "0", "-o", str(out)], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("*.tflite")) and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the deploy finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(out.glob("*.tflite"))
    with Store(db) as store:
        assert store.records(include_failed=True) == []
        store.add_run([record()], command="after the kill")
        assert len(store.records()) == 1
