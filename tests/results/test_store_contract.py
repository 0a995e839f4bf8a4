"""The contract every results-store backend keeps: each registered backend provides what the
`Backend` protocol names, opens a real database of its kind, and is the one chosen for the
locations it declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecomp.errors import EdgecompError
from edgecomp.registry import UnknownName
from edgecomp.results.store import BACKENDS, Backend, Store, backend_for
from edgecomp.results.store.base import MEMBERS


def a_location(name: str, request, tmp_path: Path) -> str | Path:
    """A new, empty database of the backend registered as `name`."""
    if name == "sqlite":
        return tmp_path / "results.db"
    if name == "postgresql":
        return request.getfixturevalue("postgres_url")
    raise AssertionError(f"add a location for the results store backend {name!r} here")


def test_the_registry_holds_both_servers():
    assert BACKENDS.names() == ["postgresql", "sqlite"]
    with pytest.raises(UnknownName, match="choose one of postgresql, sqlite"):
        BACKENDS.get("mysql")


@pytest.mark.parametrize("name", BACKENDS.names())
def test_a_backend_declares_every_member_of_the_protocol(name):
    backend = BACKENDS.get(name)
    assert backend.kind == name
    for member in MEMBERS:
        if member != "location":  # the open connection's
            assert hasattr(backend, member), f"{name} lacks {member}"
    for member in ("REAL", "BLOB", "INT64", "SERIAL_KEY"):
        assert isinstance(getattr(backend, member), str) and getattr(backend, member)
    assert isinstance(backend.schemes, tuple)


def test_exactly_one_backend_serves_file_paths():
    assert [name for name, backend in BACKENDS.items() if not backend.schemes] == ["sqlite"]


@pytest.mark.parametrize("name", BACKENDS.names())
def test_an_open_backend_keeps_the_protocol(name, request, tmp_path):
    location = a_location(name, request, tmp_path)
    backend, where = backend_for(str(location))
    assert backend is BACKENDS.get(name)
    db = backend.open(where, 5.0)
    try:
        assert isinstance(db, Backend)
        assert db.kind == name and isinstance(db.location, str) and db.location
        assert db.version() == 0 and not db.in_transaction()
        db.begin("write")
        assert db.in_transaction()
        db.execute("CREATE TABLE t (id INTEGER)")
        db.set_version(7)
        db.execute("ROLLBACK")
        assert db.version() == 0  # the version is written inside the transaction
        assert all(issubclass(kind, BaseException) for kind in db.errors)
        error = db.error(db.errors[0]("boom"), "testing", 5.0)
        assert isinstance(error, EdgecompError) and "testing" in str(error)
    finally:
        db.close()
    with Store(location) as store:
        assert store.kind == name


@pytest.mark.parametrize("location, name", [
    ("postgresql://edgecomp@db.lab/results", "postgresql"),
    ("postgres://edgecomp:secret@127.0.0.1:5432/results", "postgresql"),
    ("results.db", "sqlite"),
    ("/var/lib/edgecomp/results.db", "sqlite"),
    (Path("results.db"), "sqlite"),
])
def test_a_location_is_served_by_the_backend_that_declares_it(location, name):
    backend, where = backend_for(location)
    assert backend is BACKENDS.get(name)
    assert where == (location if name != "sqlite" else Path(location))


def test_no_location_is_edgecomp_db(monkeypatch, tmp_path):
    url = "postgresql://edgecomp@db.lab/results"
    monkeypatch.setenv("EDGECOMP_DB", url)
    assert backend_for(None) == (BACKENDS.get("postgresql"), url)
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "r.db"))
    assert backend_for(None) == (BACKENDS.get("sqlite"), tmp_path / "r.db")
