"""The PostgreSQL backend of the results store: one database shared by a lab of boards and
several CI runners.

`EDGECOMP_DB=postgresql://user@host/db` (or `postgres://`) selects it: the same tables, the
same migrations, the same code path as SQLite; only what the two servers do differently
lives here. Writes are ordinary transactions, and migrations hold a transaction-scoped
advisory lock while they re-read the version and change the schema (its DDL is
transactional too). psycopg is imported only when a PostgreSQL store is opened.

The URL's secrets (a password in the user part or as `?password=`, `?sslpassword=`) never
leave the connection: `shown` is the URL as every message, report and record shows it, read
by libpq's own parser with the secrets replaced by ***, and `without_secrets` takes them out
of the driver's texts before they become a sentence.
"""

from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import quote, unquote, urlencode

from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.store.base import BACKENDS, locked_error

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# Any constant shared by every edgecomp: the advisory lock migrations hold ("edgecmp").
_MIGRATION_LOCK = 0x65646765636D70


# libpq's connection parameters whose values are secrets.
SECRET_PARAMETERS = ("password", "sslpassword")

HIDDEN = "***"


def _split(url: str) -> tuple[str, str, str, str]:
    """The URL's scheme, user part, host part and what follows the host (path and query),
    as written."""
    scheme, _, rest = url.partition("://")
    head, mark, query = rest.partition("?")
    authority, slash, path = head.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    return scheme, userinfo + at, hosts, slash + path + mark + query


def _ambiguous(url: str) -> bool:
    """Whether libpq reads the URL's user part differently from every other URL reader: libpq
    ends it at the first raw @ or /, so a raw @ or / in a password puts the rest of it in the
    host, port or database name (and so into libpq's own messages)."""
    rest = url.partition("://")[2].partition("?")[0]
    authority, _, path = rest.partition("/")
    return authority.count("@") > 1 or "@" in path


def _parameters(url: str) -> dict[str, str] | None:
    """libpq's reading of the URL (None when psycopg is missing or libpq refuses it)."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return None
    try:
        return {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except psycopg.Error:
        return None


def shown(url: str) -> str:
    """The PostgreSQL URL as edgecomp shows it anywhere (messages, reports, logs, records):
    libpq's reading of it, with every secret replaced by ***. A URL libpq cannot read
    unambiguously is shown by its scheme alone."""
    scheme = url.partition("://")[0] or "postgresql"
    params = None if _ambiguous(url) else _parameters(url)
    if params is None:
        return f"{scheme}://{HIDDEN}"
    user = params.pop("user", None)
    secret = params.pop("password", None) is not None
    hosts = params.pop("host", "").split(",")
    ports = params.pop("port", "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    netloc = ",".join(quote(host, safe="") + (f":{port}" if port else "")
                      for host, port in zip(hosts, ports + [""] * len(hosts)))
    userinfo = (quote(user or "", safe="") + (f":{HIDDEN}" if secret else "") + "@"
                if user or secret else "")
    dbname = params.pop("dbname", None)
    path = "/" + quote(dbname, safe="") if dbname is not None else ""
    query = {key: HIDDEN if key in SECRET_PARAMETERS else value
             for key, value in params.items()}
    return (f"{scheme}://{userinfo}{netloc}{path}"
            + ("?" + urlencode(query, safe="*") if query else ""))


def secrets_of(url: str) -> list[str]:
    """Every spelling of the URL's secrets that a text might quote: libpq's values and the
    URL's own text (percent-encoded or not), longest first."""
    found = set()
    params = _parameters(url) or {}
    found.update(params.get(key) or "" for key in SECRET_PARAMETERS)
    _, userinfo, _, rest = _split(url)
    found.add(userinfo[:-1].partition(":")[2])
    for pair in rest.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) in SECRET_PARAMETERS:
            found.add(value)
    found |= {unquote(text) for text in found}
    found |= {quote(text, safe=safe) for text in found for safe in ("", "/")}
    return sorted((text for text in found if text), key=len, reverse=True)


def without_secrets(text: str, secrets: Iterable[str]) -> str:
    """A driver's text with every spelling of the secrets replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return text


def _one_line(exc: BaseException, secrets: Iterable[str]) -> str:
    """A driver's message (libpq's spans lines) as one line without the URL's secrets, or
    the exception's type."""
    return without_secrets(" ".join(str(exc).split()), secrets) or type(exc).__name__


@BACKENDS.register("postgresql")
class Postgres:
    """A PostgreSQL connection (a store shared by many machines)."""

    kind = "postgresql"
    schemes = POSTGRES_SCHEMES
    REAL = "DOUBLE PRECISION"  # PostgreSQL's REAL is 4 bytes; SQLite's is 8
    BLOB = "BYTEA"
    INT64 = "BIGINT"
    SERIAL_KEY = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, raw: Any, location: str, secrets: Iterable[str] = ()):
        self.raw = raw
        self.location = location
        self.secrets = tuple(secrets)  # taken out of every driver text quoted

    @staticmethod
    def shown(where: Any) -> str:
        """The URL as messages show it, with its secrets replaced by ***."""
        return shown(str(where))

    @classmethod
    def open(cls, url: str, timeout_s: float) -> "Postgres":
        location = shown(url)
        secrets = secrets_of(url)
        try:
            import psycopg
        except ImportError as exc:
            raise InputError(f"EDGECOMP_DB names a PostgreSQL database ({location}) but the "
                             "PostgreSQL driver is not installed: pip install "
                             "'edgecomp[postgres]' (psycopg).") from exc
        from psycopg.conninfo import conninfo_to_dict

        if _ambiguous(url):
            raise InputError("the PostgreSQL URL of the results database has a raw @ or / in "
                             "its user:password part or database name, which libpq reads "
                             "differently; percent-encode them (@ as %40, / as %2F) or give "
                             "the password in a passfile (?passfile=PATH or PGPASSFILE).")
        try:
            conninfo_to_dict(url)  # libpq's own parser: a malformed URL is the user's
        except psycopg.Error as exc:
            # libpq quotes the piece it could not read, which may be part of a password.
            why = "its message is not shown: the URL holds a password" if secrets \
                else _one_line(exc, secrets)
            raise InputError(f"EDGECOMP_DB={location} is not a PostgreSQL URL libpq accepts "
                             f"({why}); write it as "
                             "postgresql://user@host:port/database.") from None
        try:
            # autocommit: every transaction below is explicit, as with SQLite.
            raw = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout_s)))
        except psycopg.Error as exc:
            reason = _one_line(exc, secrets)
            raise EdgecompError(f"cannot connect to the PostgreSQL results database "
                                f"{location} ({reason}); check that the server runs and "
                                "that EDGECOMP_DB names it.") from None
        db = cls(raw, location, secrets)
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
        reason = _one_line(exc, self.secrets)
        if state in ("55P03", "40P01"):  # lock not available, deadlock detected
            return locked_error(self.location, timeout_s, doing)
        if state.startswith("08") or "connection" in reason.lower():
            return EdgecompError(f"the connection to the results database {self.location} "
                                 f"failed while {doing} ({reason}); nothing of this step was "
                                 "recorded.")
        return EdgecompError(f"the results database {self.location} failed while {doing} "
                             f"({reason}); check that EDGECOMP_DB's user may create and write "
                             "tables there.")
