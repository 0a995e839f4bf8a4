"""The results store: SQLite with a schema version and forward migrations.

Location: $EDGECOMP_DB, else $XDG_DATA_HOME/edgecomp/results.db
(~/.local/share/edgecomp/results.db). One row per measured artifact; the full record,
raw latency samples included, is kept as JSON beside the columns used for queries.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterable

from edgecomp import paths
from edgecomp.errors import InputError
from edgecomp.results.record import ResultRecord


def default_db_path() -> Path:
    """The database location, overridable by EDGECOMP_DB (see `edgecomp.paths`)."""
    return paths.db_path()


def _v1(db: sqlite3.Connection) -> None:
    db.executescript("""
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            command TEXT NOT NULL,
            host_json TEXT NOT NULL
        );
        CREATE TABLE results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(id),
            created_at TEXT NOT NULL,
            model TEXT NOT NULL,
            technique TEXT NOT NULL,
            target TEXT NOT NULL,
            format TEXT NOT NULL,
            precision TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            accuracy REAL,
            accuracy_delta REAL,
            p50_ms REAL,
            p90_ms REAL,
            ok INTEGER NOT NULL,
            error TEXT,
            artifact_sha256 TEXT NOT NULL,
            record_json TEXT NOT NULL
        );
        CREATE INDEX results_by_model_target ON results(model, target);
    """)


def _v2(db: sqlite3.Connection) -> None:
    # Energy joins the queryable columns once boards with power probes report it.
    db.execute("ALTER TABLE results ADD COLUMN energy_mj REAL")


# Each entry upgrades the schema by one version; never edit a released one, append.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2]
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """Open (creating or migrating) the results database at `path`."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.version = self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path} is not an edgecomp results database ({exc}); "
                             "point EDGECOMP_DB at another file.") from exc

    def _migrate(self) -> int:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InputError(f"{self.path} has schema version {version}, newer than this "
                             f"edgecomp understands ({SCHEMA_VERSION}); upgrade edgecomp.")
        for number in range(version, SCHEMA_VERSION):
            with self.db:  # each migration is one transaction: all or nothing
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version = {number + 1}")
        return SCHEMA_VERSION

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_run(self, records: Iterable[ResultRecord], *, command: str,
                host: dict | None = None) -> str:
        """Store one run's records in a single transaction and return the run id."""
        run_id = uuid.uuid4().hex[:12]
        records = list(records)
        with self.db:
            self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)",
                            (run_id, records[0].created_at if records else "", command,
                             json.dumps(host or {})))
            for record in records:
                latency = record.latency_ms
                self.db.execute(
                    "INSERT INTO results (run_id, created_at, model, technique, target, format,"
                    " precision, size_bytes, accuracy, accuracy_delta, p50_ms, p90_ms, ok, error,"
                    " artifact_sha256, record_json, energy_mj)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, record.created_at, record.model, record.technique, record.target,
                     record.format, record.precision, record.size_bytes, record.accuracy,
                     record.accuracy_delta, latency.p50 if latency else None,
                     latency.p90 if latency else None, int(record.ok), record.error,
                     record.artifact_sha256, json.dumps(record.to_json()), record.energy_mj))
        return run_id

    def records(self, *, model: str | None = None, target: str | None = None,
                include_failed: bool = False) -> list[ResultRecord]:
        """Stored records, oldest first, optionally filtered."""
        query, args = "SELECT record_json FROM results WHERE 1=1", []
        if model:
            query, args = query + " AND model = ?", args + [model]
        if target:
            query, args = query + " AND target = ?", args + [target]
        if not include_failed:
            query += " AND ok = 1"
        with closing(self.db.execute(query + " ORDER BY id", args)) as rows:
            return [ResultRecord.from_json(json.loads(row[0])) for row in rows]
