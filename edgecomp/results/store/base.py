"""What every results-store backend provides, the registry that finds them, and the choice
of one for a location.

A backend wraps one DB-API connection and answers what differs between servers: column
types, placeholders, how a write or a migration takes its lock, where the schema version
lives, and its errors as one sentence. Each is a module of this package whose class
registers itself in `BACKENDS` under its `kind`, declaring the URL schemes it serves; the
one that declares none serves file paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

from edgecomp import paths
from edgecomp.errors import EdgecompError, InputError
from edgecomp.registry import Registry


@runtime_checkable
class Backend(Protocol):
    """One open connection to a results database, as `Store` and the migrations use it."""

    kind: str  # the name it is registered under ("sqlite", "postgresql")
    schemes: tuple[str, ...]  # the URL prefixes it serves; () for file paths
    REAL: str  # column types, as the server spells them
    BLOB: str
    INT64: str
    SERIAL_KEY: str
    location: str  # the open database, for messages (a URL without its password)

    @staticmethod
    def shown(where: Any) -> str:
        """`where` (as `backend_for` gives it) as every message, report and record shows it:
        never with a password."""

    @classmethod
    def open(cls, location: Any, timeout_s: float) -> "Backend":
        """Connect, waiting at most `timeout_s` for other processes' locks."""

    def execute(self, sql: str, args: Iterable[Any] = ()) -> Any:
        """Run one statement written with `?` placeholders; its cursor."""

    def insert(self, sql: str, args: Iterable[Any]) -> int:
        """Run an INSERT and return the new row's id."""

    def begin(self, purpose: str) -> None:
        """Start a transaction holding the lock a "write" or a "migrate" needs."""

    def in_transaction(self) -> bool:
        """Whether a transaction is open (a ROLLBACK is due after an error)."""

    def version(self) -> int:
        """The schema version stored in the database (0: none yet)."""

    def set_version(self, version: int) -> None:
        """Store the schema version, inside the migration's transaction."""

    def close(self) -> None:
        """Close the connection."""

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exception types, for `except`."""

    def error(self, exc: BaseException, doing: str, timeout_s: float) -> EdgecompError:
        """The driver's exception as one sentence for the user."""


# Every attribute and method the protocol names, for the registry's check and the contract test.
MEMBERS = tuple(sorted({*Backend.__annotations__,
                        *(name for name in vars(Backend) if not name.startswith("_"))}))


def _check(backend: type) -> None:
    """A backend class declares every member of `Backend` (`location` is its connection's)."""
    missing = [name for name in MEMBERS if name != "location" and not hasattr(backend, name)]
    if missing:
        raise TypeError(f"results store backend {backend.__name__} lacks "
                        f"{', '.join(missing)} (see edgecomp.results.store.base.Backend)")
    schemes = backend.schemes
    if not isinstance(schemes, tuple) or not all(isinstance(s, str) and s.endswith("://")
                                                 for s in schemes):
        raise TypeError(f"results store backend {backend.__name__}: schemes must be a tuple "
                        f"of URL prefixes such as 'postgresql://', not {schemes!r}")


BACKENDS = Registry("results store", "edgecomp.results.store", check=_check)

# A libpq key=value connection string ("host=db user=me password=..."): not a file name.
_CONNINFO = re.compile(r"(^|\s)(host|hostaddr|port|dbname|user|password|passfile|service)"
                       r"\s*=", re.IGNORECASE)


def backend_for(location: str | Path | None) -> tuple[type[Backend], str | Path]:
    """The backend that serves `location` (default: EDGECOMP_DB), and the location as it
    opens it: a URL of a scheme a backend declares as given, anything else a file path."""
    if location is None:
        location = paths.db_location()
    found = BACKENDS.items()
    if isinstance(location, str):
        for _, backend in found:
            if backend.schemes and location.startswith(backend.schemes):
                return backend, location
    if _CONNINFO.search(str(location)):
        # Never echoed: it may hold a password.
        raise InputError("the results database is given as a key=value connection "
                         "string, which edgecomp does not read; write it as a URL, "
                         "postgresql://user@host:port/database (the password "
                         "percent-encoded, or in ?passfile=PATH or PGPASSFILE).")
    files = [backend for _, backend in found if not backend.schemes]
    return files[0], Path(location)


def locked_error(location: str, timeout_s: float, doing: str) -> EdgecompError:
    """The sentence for a wait on another process's lock that ran out, on any server."""
    return EdgecompError(f"the results database {location} stayed locked by another edgecomp "
                         f"process for {timeout_s:g} s while {doing}; try again when it has "
                         "finished.")
