"""The results store: SQLite or PostgreSQL, one schema with a version and forward migrations.

Location: $EDGECOMP_DB, else $XDG_DATA_HOME/edgecomp/results.db
(~/.local/share/edgecomp/results.db). `EDGECOMP_DB=postgresql://user@host/db` (or
`postgres://`) uses a PostgreSQL server instead, shared by a lab of boards and several CI
runners: the same tables, the same migrations, the same code path; only the few places
where the two servers speak differently live in `SQLite` and `Postgres` below.

One row per measured artifact: the record as JSON beside the columns used for queries, and
its raw latency samples in a table of their own (zlib-compressed little-endian float64,
exact), read only when asked for. Each run has a row with its command, `--tag` and the git
commit and branch it was made from.

Several edgecomp processes may share one database. SQLite runs in WAL mode (readers never
wait for a writer), every write is one `BEGIN IMMEDIATE` transaction, and migrations run
under `BEGIN EXCLUSIVE`, each re-reading the schema version once it holds the lock.
PostgreSQL writes are ordinary transactions, and migrations hold a transaction-scoped
advisory lock while they re-read the version and change the schema (its DDL is
transactional too).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
import sqlite3
import time
import uuid
import zlib
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from edgecomp import paths
from edgecomp.atomic import strict_json
from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.record import ResultRecord

# How long an open or a write waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 60.0

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def default_db_path() -> Path:
    """The SQLite database location, overridable by EDGECOMP_DB (see `edgecomp.paths`)."""
    return paths.db_path()


def pack_samples(samples: list[float]) -> bytes:
    """Latency samples as stored in `samples.data`: zlib over little-endian float64."""
    import numpy as np

    return zlib.compress(np.asarray(samples, dtype="<f8").tobytes(), 1)


def unpack_samples(data: bytes) -> list[float]:
    """The samples `pack_samples` stored, exactly."""
    import numpy as np

    return np.frombuffer(zlib.decompress(bytes(data)), dtype="<f8").tolist()


def _locked(location: str, timeout_s: float, doing: str) -> EdgecompError:
    """The sentence for a wait on another process's lock that ran out, on either server."""
    return EdgecompError(f"the results database {location} stayed locked by another edgecomp "
                         f"process for {timeout_s:g} s while {doing}; try again when it has "
                         "finished.")


def _one_line(exc: BaseException) -> str:
    """A driver's message (libpq's spans lines) as one line, or the exception's type."""
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------------------------------
# The two servers. Each wraps one DB-API connection and answers what differs: column
# types, placeholders, how a write or a migration takes its lock, where the schema version
# lives, and its errors as one sentence.


class SQLite:
    """A SQLite connection (the default store, one file)."""

    kind = "sqlite"
    REAL = "REAL"
    BLOB = "BLOB"
    INT64 = "INTEGER"
    SERIAL_KEY = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, raw: sqlite3.Connection, location: str = "the results database"):
        self.raw = raw
        self.location = location

    @classmethod
    def open(cls, path: Path, timeout_s: float) -> "SQLite":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder of the results database {path} "
                             f"({exc.strerror}); point EDGECOMP_DB at a writable file.") from exc
        try:
            # isolation_level=None: sqlite3 issues no BEGIN/COMMIT of its own (it would
            # autocommit DDL); every transaction is explicit.
            raw = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise cls(None, str(path)).error(exc, "opening it", timeout_s) from exc
        db = cls(raw, str(path))
        try:
            raw.execute("PRAGMA foreign_keys = ON")
            db._use_wal(timeout_s)
        except sqlite3.Error as exc:
            raw.close()
            raise db.error(exc, "opening it", timeout_s) from exc
        return db

    def _use_wal(self, timeout_s: float) -> None:
        """Switch the file to WAL (once; it stays so). SQLite answers this switch with
        SQLITE_BUSY at once when other connections are opening the file, without waiting
        in its busy handler, so the wait for them is here."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.raw.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def execute(self, sql: str, args: Iterable[Any] = ()):
        return self.raw.execute(sql, tuple(args))

    def insert(self, sql: str, args: Iterable[Any]) -> int:
        """Run an INSERT and return the new row's id."""
        return self.raw.execute(sql, tuple(args)).lastrowid

    def begin(self, purpose: str) -> None:
        self.raw.execute("BEGIN EXCLUSIVE" if purpose == "migrate" else "BEGIN IMMEDIATE")

    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def version(self) -> int:
        return self.raw.execute("PRAGMA user_version").fetchone()[0]

    def set_version(self, version: int) -> None:
        self.raw.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        self.raw.close()

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def error(self, exc: BaseException, doing: str, timeout_s: float) -> EdgecompError:
        """SQLite's exception as one sentence for the user."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return _locked(self.location, timeout_s, doing)
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return InputError(f"{self.location} is not an edgecomp results database ({exc}); "
                              "point EDGECOMP_DB at another file.")
        return EdgecompError(f"the results database {self.location} failed while {doing} "
                             f"({exc}); check that it and its folder are writable, or point "
                             "EDGECOMP_DB at another file.")


# Any constant shared by every edgecomp: the advisory lock migrations hold ("edgecmp").
_MIGRATION_LOCK = 0x65646765636D70


class Postgres:
    """A PostgreSQL connection (a store shared by many machines)."""

    kind = "postgresql"
    REAL = "DOUBLE PRECISION"  # PostgreSQL's REAL is 4 bytes; SQLite's is 8
    BLOB = "BYTEA"
    INT64 = "BIGINT"
    SERIAL_KEY = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, raw: Any, location: str):
        self.raw = raw
        self.location = location

    @staticmethod
    def redacted(url: str) -> str:
        """The URL without its password, for messages."""
        return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)

    @classmethod
    def open(cls, url: str, timeout_s: float) -> "Postgres":
        location = cls.redacted(url)
        try:
            import psycopg
        except ImportError as exc:
            raise InputError(f"EDGECOMP_DB names a PostgreSQL database ({location}) but the "
                             "PostgreSQL driver is not installed: pip install "
                             "'edgecomp[postgres]' (psycopg).") from exc
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(url)  # libpq's own parser: a malformed URL is the user's
        except psycopg.Error as exc:
            raise InputError(f"EDGECOMP_DB={location} is not a PostgreSQL URL libpq accepts "
                             f"({_one_line(exc)}); write it as "
                             "postgresql://user@host:port/database.") from None
        try:
            # autocommit: every transaction below is explicit, as with SQLite.
            raw = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout_s)))
        except psycopg.Error as exc:
            reason = _one_line(exc)
            raise EdgecompError(f"cannot connect to the PostgreSQL results database "
                                f"{location} ({reason}); check that the server runs and "
                                "that EDGECOMP_DB names it.") from exc
        db = cls(raw, location)
        try:
            # Waits for another writer's or migration's locks end after the same timeout.
            raw.execute(f"SET lock_timeout = {int(timeout_s * 1000)}")
        except psycopg.Error as exc:
            raw.close()
            raise db.error(exc, "opening it", timeout_s) from exc
        return db

    def execute(self, sql: str, args: Iterable[Any] = ()):
        return self.raw.execute(sql.replace("?", "%s"), tuple(args))

    def insert(self, sql: str, args: Iterable[Any]) -> int:
        return self.execute(sql + " RETURNING id", args).fetchone()[0]

    def begin(self, purpose: str) -> None:
        self.raw.execute("BEGIN")
        if purpose == "migrate":
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def version(self) -> int:
        # The version table is created by the first migration's transaction. Asked of
        # pg_tables with the statement's snapshot: to_regclass() reads the session's cached
        # catalog, which need not show a table another session created meanwhile.
        (exists,) = self.raw.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname ="
            " current_schema() AND tablename = 'edgecomp_schema')").fetchone()
        if not exists:
            return 0
        row = self.raw.execute("SELECT version FROM edgecomp_schema").fetchone()
        return row[0] if row else 0

    def set_version(self, version: int) -> None:
        self.raw.execute("CREATE TABLE IF NOT EXISTS edgecomp_schema (version INTEGER NOT NULL)")
        self.raw.execute("DELETE FROM edgecomp_schema")
        self.raw.execute("INSERT INTO edgecomp_schema VALUES (%s)", (int(version),))

    def close(self) -> None:
        self.raw.close()

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def error(self, exc: BaseException, doing: str, timeout_s: float) -> EdgecompError:
        """psycopg's exception as one sentence for the user."""
        state = getattr(exc, "sqlstate", None) or ""
        reason = _one_line(exc)
        if state in ("55P03", "40P01"):  # lock not available, deadlock detected
            return _locked(self.location, timeout_s, doing)
        if state.startswith("08") or "connection" in reason.lower():
            return EdgecompError(f"the connection to the results database {self.location} "
                                 f"failed while {doing} ({reason}); nothing of this step was "
                                 "recorded.")
        return EdgecompError(f"the results database {self.location} failed while {doing} "
                             f"({reason}); check that EDGECOMP_DB's user may create and write "
                             "tables there.")


# ---------------------------------------------------------------------------------------
# Migrations: each takes the wrapped connection (`SQLite` or `Postgres`), inside the
# transaction that also writes the new version; types come from the connection.


def _v1(db) -> None:
    # One statement at a time: executescript would commit the migration's transaction.
    db.execute("""
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            command TEXT NOT NULL,
            host_json TEXT NOT NULL
        )""")
    db.execute(f"""
        CREATE TABLE results (
            id {db.SERIAL_KEY},
            run_id TEXT NOT NULL REFERENCES runs(id),
            created_at TEXT NOT NULL,
            model TEXT NOT NULL,
            technique TEXT NOT NULL,
            target TEXT NOT NULL,
            format TEXT NOT NULL,
            precision TEXT NOT NULL,
            size_bytes {db.INT64} NOT NULL,
            accuracy {db.REAL},
            accuracy_delta {db.REAL},
            p50_ms {db.REAL},
            p90_ms {db.REAL},
            ok INTEGER NOT NULL,
            error TEXT,
            artifact_sha256 TEXT NOT NULL,
            record_json TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX results_by_model_target ON results(model, target)")


def _v2(db) -> None:
    # Energy joins the queryable columns once boards with power probes report it.
    db.execute(f"ALTER TABLE results ADD COLUMN energy_mj {db.REAL}")


def _v3(db) -> None:
    # Raw samples (85k for a 5 s bench of a fast model, 1.8 MB as JSON) leave record_json,
    # so reading records for a table no longer parses every sample ever recorded.
    db.execute(f"""
        CREATE TABLE samples (
            result_id {db.INT64} PRIMARY KEY REFERENCES results(id) ON DELETE CASCADE,
            count INTEGER NOT NULL,
            data {db.BLOB} NOT NULL
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


def _v4(db) -> None:
    # Runs get a name and the git state they were made from: baselines for `gate` and
    # `compare --baseline`, filters for `report`.
    for column in ("tag", "git_commit", "git_branch"):
        db.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
    db.execute("CREATE INDEX runs_by_tag ON runs(tag)")
    db.execute("CREATE INDEX results_by_run ON results(run_id)")


# Each entry upgrades the schema by one version; never edit a released one, append.
MIGRATIONS: list[Callable[[Any], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One stored run: what `gate`, `compare --baseline` and `report` choose runs by."""

    id: str
    created_at: str
    command: str
    tag: str | None
    git_commit: str | None
    git_branch: str | None
    results: int


def parse_since(text: str) -> str:
    """`--since` as the ISO time stored results are compared with: a date or time
    ("2026-11-01", "2026-11-01T08:00"), or an age ("90m", "12h", "7d", "2w")."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text)
    now = _dt.datetime.now(_dt.timezone.utc)
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        moment = now - _dt.timedelta(**{unit: float(match.group(1))})
    else:
        try:
            moment = _dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise InputError(f"--since {text!r} is neither a date (2026-11-01), a time "
                             "(2026-11-01T08:00) nor an age (90m, 12h, 7d, 2w).") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")


def _location(location: str | Path | None) -> str | Path:
    if location is None:
        return paths.db_location()
    if isinstance(location, str) and not location.startswith(POSTGRES_SCHEMES):
        return Path(location)
    return location


class Store:
    """Open (creating or migrating) the results store: a SQLite file at `location`, or
    a PostgreSQL database given as a `postgresql://` URL (default: EDGECOMP_DB)."""

    def __init__(self, location: str | Path | None = None, *,
                 timeout_s: float = BUSY_TIMEOUT_S):
        where = _location(location)
        self.timeout_s = timeout_s
        if isinstance(where, Path):
            self.path: Path | None = where
            self.db: SQLite | Postgres = SQLite.open(where, timeout_s)
        else:
            self.path = None
            self.db = Postgres.open(where, timeout_s)
        self.location = self.db.location
        try:
            self.version = self._migrate()
        except self.db.errors as exc:
            self.db.close()
            raise self.db.error(exc, "opening it", timeout_s) from exc
        except BaseException:
            self.db.close()
            raise

    @property
    def kind(self) -> str:
        return self.db.kind

    def _migrate(self) -> int:
        target = len(MIGRATIONS)
        version = self.db.version()
        while version < target:
            with self._transaction("migrate"):
                version = self.db.version()  # another process may have migrated meanwhile
                if version < target:
                    MIGRATIONS[version](self.db)
                    version += 1
                    self.db.set_version(version)
        if version > target:
            raise InputError(f"{self.location} has schema version {version}, newer than this "
                             f"edgecomp understands ({target}); upgrade edgecomp.")
        return version

    @contextmanager
    def _transaction(self, purpose: str) -> Iterator[None]:
        """All or nothing: COMMIT at the end, ROLLBACK on any error (interrupts included)."""
        self.db.begin(purpose)
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction():
                self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_run(self, records: Iterable[ResultRecord], *, command: str,
                host: dict | None = None) -> str:
        """Store one run's records in a single transaction and return the run id. The
        run's tag and git facts are the records' (`provenance.stamp`)."""
        run_id = uuid.uuid4().hex[:12]
        records = list(records)
        first = records[0] if records else None
        git = (first.git or {}) if first else {}
        # Encoded before taking the write lock, so other writers wait only for the inserts.
        rows = [(record,
                 strict_json(dataclasses.replace(record, samples_ms=[], run_id=run_id)
                             .to_json(with_samples=False)),
                 pack_samples(record.samples_ms) if record.samples_ms else None)
                for record in records]
        try:
            with self._transaction("write"):
                self.db.execute(
                    "INSERT INTO runs (id, created_at, command, host_json, tag, git_commit,"
                    " git_branch) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, first.created_at if first else "", command,
                     json.dumps(host or {}), first.tag if first else None,
                     git.get("commit"), git.get("branch")))
                for record, text, samples in rows:
                    self._insert_result(run_id, record, text, samples)
        except self.db.errors as exc:
            raise self.db.error(exc, "recording a run", self.timeout_s) from exc
        return run_id

    def _insert_result(self, run_id: str, record: ResultRecord, text: str,
                       samples: bytes | None) -> None:
        latency = record.latency_ms
        result_id = self.db.insert(
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
                            (result_id, len(record.samples_ms), samples))

    def records(self, *, model: str | None = None, target: str | None = None,
                technique: str | None = None, tag: str | None = None,
                since: str | None = None, run_id: str | None = None,
                branch: str | None = None, include_failed: bool = False,
                with_samples: bool = False) -> list[ResultRecord]:
        """Stored records, oldest first, filtered by any of: model, target, technique,
        the run's tag, `since` (an ISO time, see `parse_since`), run id, git branch.

        Their `samples_ms` is empty unless `with_samples`: tables need only the statistics,
        and a fast model's samples outweigh the rest of its record a hundred times.
        """
        query = ("SELECT results.record_json, {samples}, results.run_id, runs.tag,"
                 " runs.git_commit, runs.git_branch"
                 " FROM results JOIN runs ON runs.id = results.run_id {join} WHERE 1=1")
        if with_samples:
            query = query.format(samples="samples.data", join="LEFT JOIN samples ON "
                                 "samples.result_id = results.id")
        else:
            query = query.format(samples="NULL", join="")
        args: list = []
        for column, value in (("results.model", model), ("results.target", target),
                              ("results.technique", technique), ("runs.tag", tag),
                              ("results.run_id", run_id), ("runs.git_branch", branch)):
            if value:
                query, args = query + f" AND {column} = ?", args + [value]
        if since:
            query, args = query + " AND results.created_at >= ?", args + [since]
        if not include_failed:
            query += " AND results.ok = 1"
        out = []
        try:
            with closing(self.db.execute(query + " ORDER BY results.id", args)) as rows:
                for text, samples, run, run_tag, commit, git_branch in rows:
                    data = json.loads(text)
                    if samples is not None:
                        data["samples_ms"] = unpack_samples(samples)
                    data["run_id"] = run
                    data["tag"] = run_tag
                    if data.get("git") is None and commit:
                        data["git"] = {"commit": commit, "branch": git_branch}
                    out.append(ResultRecord.from_json(data))
        except self.db.errors as exc:
            raise self.db.error(exc, "reading results", self.timeout_s) from exc
        return out

    def runs(self, *, tag: str | None = None, branch: str | None = None,
             command: str | None = None) -> list[RunInfo]:
        """Stored runs with at least one result, oldest first (in the order recorded)."""
        query = ("SELECT runs.id, runs.created_at, runs.command, runs.tag, runs.git_commit,"
                 " runs.git_branch, COUNT(results.id), MIN(results.id) FROM runs"
                 " JOIN results ON results.run_id = runs.id WHERE 1=1")
        args: list = []
        if tag:
            query, args = query + " AND runs.tag = ?", args + [tag]
        if branch:
            query, args = query + " AND runs.git_branch = ?", args + [branch]
        if command:
            # The command's first word after `edgecomp` (deploy, bench).
            query, args = query + " AND runs.command LIKE ?", args + [f"edgecomp {command}%"]
        query += (" GROUP BY runs.id, runs.created_at, runs.command, runs.tag,"
                  " runs.git_commit, runs.git_branch ORDER BY MIN(results.id)")
        try:
            with closing(self.db.execute(query, args)) as rows:
                return [RunInfo(*row[:7]) for row in rows]
        except self.db.errors as exc:
            raise self.db.error(exc, "reading runs", self.timeout_s) from exc
