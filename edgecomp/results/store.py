"""The results store: SQLite with a schema version and forward migrations.

Location: $EDGECOMP_DB, else $XDG_DATA_HOME/edgecomp/results.db
(~/.local/share/edgecomp/results.db). One row per measured artifact: the record as JSON
beside the columns used for queries, and its raw latency samples in a table of their own
(zlib-compressed little-endian float64, exact), read only when asked for.

Several edgecomp processes may share one database: it runs in WAL mode (readers never
wait for a writer), every write is one `BEGIN IMMEDIATE` transaction, and migrations run
under `BEGIN EXCLUSIVE`, each re-reading the schema version once it holds the lock.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import uuid
import zlib
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from edgecomp import paths
from edgecomp.atomic import strict_json
from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.record import ResultRecord

# How long an open or a write waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 60.0


def default_db_path() -> Path:
    """The database location, overridable by EDGECOMP_DB (see `edgecomp.paths`)."""
    return paths.db_path()


def pack_samples(samples: list[float]) -> bytes:
    """Latency samples as stored in `samples.data`: zlib over little-endian float64."""
    import numpy as np

    return zlib.compress(np.asarray(samples, dtype="<f8").tobytes(), 1)


def unpack_samples(data: bytes) -> list[float]:
    """The samples `pack_samples` stored, exactly."""
    import numpy as np

    return np.frombuffer(zlib.decompress(data), dtype="<f8").tolist()


def _v1(db: sqlite3.Connection) -> None:
    # One statement at a time: executescript would commit the migration's transaction.
    db.execute("""
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            command TEXT NOT NULL,
            host_json TEXT NOT NULL
        )""")
    db.execute("""
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
        )""")
    db.execute("CREATE INDEX results_by_model_target ON results(model, target)")


def _v2(db: sqlite3.Connection) -> None:
    # Energy joins the queryable columns once boards with power probes report it.
    db.execute("ALTER TABLE results ADD COLUMN energy_mj REAL")


def _v3(db: sqlite3.Connection) -> None:
    # Raw samples (85k for a 5 s bench of a fast model, 1.8 MB as JSON) leave record_json,
    # so reading records for a table no longer parses every sample ever recorded.
    db.execute("""
        CREATE TABLE samples (
            result_id INTEGER PRIMARY KEY REFERENCES results(id) ON DELETE CASCADE,
            count INTEGER NOT NULL,
            data BLOB NOT NULL
        )""")
    with closing(db.execute("SELECT id FROM results ORDER BY id")) as rows:
        ids = [row[0] for row in rows]
    for result_id in ids:  # one row in memory at a time
        (text,) = db.execute("SELECT record_json FROM results WHERE id = ?",
                             (result_id,)).fetchone()
        data = json.loads(text)
        samples = data.pop("samples_ms", None)
        if samples is None:
            continue
        if samples:
            db.execute("INSERT INTO samples VALUES (?, ?, ?)",
                       (result_id, len(samples), pack_samples(samples)))
        db.execute("UPDATE results SET record_json = ? WHERE id = ?",
                   (json.dumps(data), result_id))


# Each entry upgrades the schema by one version; never edit a released one, append.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """Open (creating or migrating) the results database at `path`."""

    def __init__(self, path: Path | None = None, *, timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout_s = timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder of the results database {self.path} "
                             f"({exc.strerror}); point EDGECOMP_DB at a writable file.") from exc
        try:
            # isolation_level=None: sqlite3 issues no BEGIN/COMMIT of its own (it would
            # autocommit DDL); every transaction below is explicit.
            self.db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc, "opening it") from exc
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            self._use_wal()
            self.version = self._migrate()
        except sqlite3.Error as exc:
            self.db.close()
            raise self._error(exc, "opening it") from exc
        except BaseException:
            self.db.close()
            raise

    def _use_wal(self) -> None:
        """Switch the file to WAL (once; it stays so). SQLite answers this switch with
        SQLITE_BUSY at once when other connections are opening the file, without waiting
        in its busy handler, so the wait for them is here."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _migrate(self) -> int:
        target = len(MIGRATIONS)
        version = self._user_version()
        while version < target:
            with self._transaction("BEGIN EXCLUSIVE"):
                version = self._user_version()  # another process may have migrated meanwhile
                if version < target:
                    MIGRATIONS[version](self.db)
                    version += 1
                    self.db.execute(f"PRAGMA user_version = {version}")
        if version > target:
            raise InputError(f"{self.path} has schema version {version}, newer than this "
                             f"edgecomp understands ({target}); upgrade edgecomp.")
        return version

    def _user_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        """All or nothing: COMMIT at the end, ROLLBACK on any error (interrupts included)."""
        self.db.execute(begin)
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _error(self, exc: sqlite3.Error, doing: str) -> EdgecompError:
        """SQLite's exception as one sentence for the user."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return EdgecompError(
                f"the results database {self.path} stayed locked by another edgecomp process "
                f"for {self.timeout_s:g} s while {doing}; try again when it has finished.")
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return InputError(f"{self.path} is not an edgecomp results database ({exc}); "
                              "point EDGECOMP_DB at another file.")
        return EdgecompError(f"the results database {self.path} failed while {doing} ({exc}); "
                             "check that it and its folder are writable, or point EDGECOMP_DB "
                             "at another file.")

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
        # Encoded before taking the write lock, so other writers wait only for the inserts.
        rows = [(record,
                 strict_json(dataclasses.replace(record, samples_ms=[])
                             .to_json(with_samples=False)),
                 pack_samples(record.samples_ms) if record.samples_ms else None)
                for record in records]
        try:
            with self._transaction("BEGIN IMMEDIATE"):
                self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)",
                                (run_id, records[0].created_at if records else "", command,
                                 json.dumps(host or {})))
                for record, text, samples in rows:
                    self._insert_result(run_id, record, text, samples)
        except sqlite3.Error as exc:
            raise self._error(exc, "recording a run") from exc
        return run_id

    def _insert_result(self, run_id: str, record: ResultRecord, text: str,
                       samples: bytes | None) -> None:
        latency = record.latency_ms
        row = self.db.execute(
            "INSERT INTO results (run_id, created_at, model, technique, target, format,"
            " precision, size_bytes, accuracy, accuracy_delta, p50_ms, p90_ms, ok, error,"
            " artifact_sha256, record_json, energy_mj)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, record.created_at, record.model, record.technique, record.target,
             record.format, record.precision, record.size_bytes, record.accuracy,
             record.accuracy_delta, latency.p50 if latency else None,
             latency.p90 if latency else None, int(record.ok), record.error,
             record.artifact_sha256, text, record.energy_mj))
        if samples is not None:
            self.db.execute("INSERT INTO samples VALUES (?, ?, ?)",
                            (row.lastrowid, len(record.samples_ms), samples))

    def records(self, *, model: str | None = None, target: str | None = None,
                include_failed: bool = False, with_samples: bool = False) -> list[ResultRecord]:
        """Stored records, oldest first, optionally filtered.

        Their `samples_ms` is empty unless `with_samples`: tables need only the statistics,
        and a fast model's samples outweigh the rest of its record a hundred times.
        """
        if with_samples:
            query = ("SELECT results.record_json, samples.data FROM results"
                     " LEFT JOIN samples ON samples.result_id = results.id WHERE 1=1")
        else:
            query = "SELECT results.record_json, NULL FROM results WHERE 1=1"
        args: list = []
        if model:
            query, args = query + " AND results.model = ?", args + [model]
        if target:
            query, args = query + " AND results.target = ?", args + [target]
        if not include_failed:
            query += " AND results.ok = 1"
        out = []
        try:
            with closing(self.db.execute(query + " ORDER BY results.id", args)) as rows:
                for text, samples in rows:
                    data = json.loads(text)
                    if samples is not None:
                        data["samples_ms"] = unpack_samples(samples)
                    out.append(ResultRecord.from_json(data))
        except sqlite3.Error as exc:
            raise self._error(exc, "reading results") from exc
        return out
