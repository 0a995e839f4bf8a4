"""The results store's interface: open one (creating or migrating its schema), record a
run's records in one transaction, and read records and runs back by what they are.

`Store` asks the backend registry (`base.backend_for`) which server a location names and
speaks to it through the `Backend` protocol only. Several edgecomp processes may share one
database: every write is one transaction, and a migration runs under the backend's
migration lock, re-reading the schema version once it holds it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import re
import uuid
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from edgecomp.atomic import strict_json
from edgecomp.errors import InputError
from edgecomp.results.record import ResultRecord
from edgecomp.results.store import schema, spool
from edgecomp.results.store.base import Backend, backend_for
from edgecomp.results.store.schema import pack_samples, unpack_samples

log = logging.getLogger(__name__)

# How long an open or a write waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 60.0


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


def new_run_id() -> str:
    """A new run's id: chosen before recording, so a run kept in the spool keeps it."""
    return uuid.uuid4().hex[:12]


def spool_name(location: str | Path | None = None) -> str:
    """The store at `location` (default: EDGECOMP_DB) as the spool knows it: its shown
    location (no password), a file by its absolute path."""
    backend, where = backend_for(location)
    return backend.shown(where.resolve() if isinstance(where, Path) else where)


class Store:
    """Open (creating or migrating) the results store: a SQLite file at `location`, or
    a PostgreSQL database given as a `postgresql://` URL (default: EDGECOMP_DB).

    Runs kept in the spool for this store (measured while it failed) are recorded on open;
    `pushed` holds their ids."""

    def __init__(self, location: str | Path | None = None, *,
                 timeout_s: float = BUSY_TIMEOUT_S):
        backend, where = backend_for(location)
        self.timeout_s = timeout_s
        self.path: Path | None = where if isinstance(where, Path) else None
        self.spool_name = spool_name(location)
        self.db: Backend = backend.open(where, timeout_s)
        self.location = self.db.location
        try:
            self.version = self._migrate()
        except self.db.errors as exc:
            self.db.close()
            raise self.db.error(exc, "opening it", timeout_s) from exc
        except BaseException:
            self.db.close()
            raise
        self.pushed = spool.push_quietly(self)

    @property
    def kind(self) -> str:
        return self.db.kind

    def _migrate(self) -> int:
        # Looked up on the schema module, where a test puts a migration that breaks.
        target = len(schema.MIGRATIONS)
        version = self.db.version()
        while version < target:
            with self._transaction("migrate"):
                version = self.db.version()  # another process may have migrated meanwhile
                if version < target:
                    schema.MIGRATIONS[version](self.db)
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
                host: dict | None = None, run_id: str | None = None) -> str:
        """Store one run's records in a single transaction and return the run id (`run_id`,
        else a new one). The run's tag and git facts are the records' (`provenance.stamp`).
        A run whose id the store already holds is not recorded again."""
        run_id = run_id or new_run_id()
        records = list(records)
        first = records[0] if records else None
        git = (first.git or {}) if first else {}
        # Encoded before taking the write lock, so other writers wait only for the inserts.
        rows = [(record, _readable_json(record, run_id),
                 pack_samples(record.samples_ms) if record.samples_ms else None)
                for record in records]
        try:
            with self._transaction("write"):
                # A second writer of the same run (a repeated push) inserts nothing.
                added = self.db.execute(
                    "INSERT INTO runs (id, created_at, command, host_json, tag, git_commit,"
                    " git_branch) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (run_id, first.created_at if first else "", command,
                     json.dumps(host or {}), first.tag if first else None,
                     git.get("commit"), git.get("branch"))).rowcount
                for record, text, samples in rows if added else ():
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
        unreadable: dict[str, tuple[int, str]] = {}  # run -> (rows, the first problem)
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
                    try:
                        out.append(ResultRecord.from_json(data, source=f"run {run}"))
                    except InputError as exc:
                        count, problem = unreadable.get(run, (0, str(exc)))
                        unreadable[run] = (count + 1, problem)
        except self.db.errors as exc:
            raise self.db.error(exc, "reading results", self.timeout_s) from exc
        for run, (count, problem) in unreadable.items():
            # Rows an older edgecomp stored from a malformed manifest: left out, so that
            # one bad run does not keep everyone from reading the rest.
            log.warning("left out %d result(s) of run %s in %s that are not valid records "
                        "(%s); delete the run or record it again", count, run,
                        self.location, problem.rstrip("."))
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


def _readable_json(record: ResultRecord, run_id: str) -> str:
    """The record's JSON as stored, once it has been read back as a record: the store
    never holds a row that `records` could not read (InputError naming the field)."""
    what = f"the result of {record.artifact_name!r} on {record.target!r}"
    text = strict_json(dataclasses.replace(record, samples_ms=[], run_id=run_id)
                       .to_json(with_samples=False))
    data = json.loads(text)
    ResultRecord.from_json(data, source=what)
    try:  # JSON escapes a lone surrogate, which neither database takes as text
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} holds text that is not valid Unicode (a lone surrogate), "
                         "which no results store can hold.") from None
    return text
