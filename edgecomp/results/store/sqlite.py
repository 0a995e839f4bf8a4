"""The SQLite backend of the results store: one file, the default store.

Location: $EDGECOMP_DB, else $XDG_DATA_HOME/edgecomp/results.db
(~/.local/share/edgecomp/results.db). SQLite runs in WAL mode (readers never wait for a
writer), every write is one `BEGIN IMMEDIATE` transaction, and migrations run under
`BEGIN EXCLUSIVE`, each re-reading the schema version once it holds the lock.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from edgecomp import paths
from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.store.base import BACKENDS, locked_error


def default_db_path() -> Path:
    """The SQLite database location, overridable by EDGECOMP_DB (see `edgecomp.paths`)."""
    return paths.db_path()


@BACKENDS.register("sqlite")
class SQLite:
    """A SQLite connection (the default store, one file)."""

    kind = "sqlite"
    schemes: tuple[str, ...] = ()  # a file path: whatever no other backend's URL is
    REAL = "REAL"
    BLOB = "BLOB"
    INT64 = "INTEGER"
    SERIAL_KEY = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, raw: sqlite3.Connection, location: str = "the results database"):
        self.raw = raw
        self.location = location

    @staticmethod
    def shown(where: Any) -> str:
        """The file's path, as messages show it."""
        return str(where)

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
            return locked_error(self.location, timeout_s, doing)
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return InputError(f"{self.location} is not an edgecomp results database ({exc}); "
                              "point EDGECOMP_DB at another file.")
        return EdgecompError(f"the results database {self.location} failed while {doing} "
                             f"({exc}); check that it and its folder are writable, or point "
                             "EDGECOMP_DB at another file.")
