"""A real PostgreSQL server for the tests: Debian's `initdb` and `pg_ctl`, in a temporary
folder, listening on a free loopback port, started as an ordinary process.

PostgreSQL refuses to run as root; when the tests run as root (CI containers), the server
runs as the `postgres` user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """Start with `start()`, make databases with `new_database()`, end with `stop()`."""

    user = "edgecomp"
    password_user = "edgecomp_pw"  # the one role that logs in with a password

    def __init__(self) -> None:
        self.bin = binaries()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL's initdb was not found: install Debian's "
                                    "postgresql package (.ci/run does)")
        self.home = Path(tempfile.mkdtemp(prefix="edgecomp-pg-"))
        self.data = self.home / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check,
                              timeout=120)

    def start(self) -> "PostgresServer":
        if self.as_root:
            shutil.chown(self.home, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "--encoding=UTF8", "--no-sync")
        hba = self.data / "pg_hba.conf"
        rule = f"host all {self.password_user} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # rewritten in place: its owner stays
        return self.resume()

    def resume(self) -> "PostgresServer":
        """Start the server on its data (again, after `halt`)."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.home} "
                   "-c fsync=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.home / "log"), "-o", options, "-w", "-t", "60", "start")
        return self

    def halt(self) -> None:
        """Stop the server, keeping its data (a restart, or a server gone for a while)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                  "stop", check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    def password_url(self, password: str, database: str = "postgres") -> str:
        """A URL of `password_user`, who must log in with a password (the other users are
        trusted); the role's password is set to `password` first. The URL holds no
        password: the test writes it in the form it checks."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as db:
            exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (self.password_user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            db.execute(sql.SQL(verb + " ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(self.password_user), sql.Literal(password)))
        return f"postgresql://{self.password_user}@127.0.0.1:{self.port}/{database}"
