"""The PostgreSQL password never leaves the connection: in whatever form the URL gives it,
no message, table title, report, log or JSON shows it, against a real server whose user
logs in with a password."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest

from edgecomp.cli import main
from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.store import Store, postgres
from tests.results.records import record

# A password with the characters a URL gives meaning to.
PASSWORD = "Sup3r@sec:ret/pw"

# Each way libpq takes a password in a URL, given the URL without one.
FORMS = {
    "user part, percent-encoded": lambda base, pw=PASSWORD: base.replace(
        "://edgecomp_pw@", f"://edgecomp_pw:{quote(pw, safe='')}@"),
    "?password=, percent-encoded": lambda base, pw=PASSWORD: (
        f"{base}?password={quote(pw, safe='')}"),
    "?password= as written": lambda base, pw=PASSWORD: f"{base}?sslmode=disable&password={pw}",
}


def spellings(password: str = PASSWORD) -> list[str]:
    """How a password could show in a text: as is, percent-encoded, and the longest
    part of it without a URL's special characters."""
    return [password, quote(password, safe=""), quote(password), "sec:ret", "Sup3r"]


def assert_hidden(*texts: str) -> None:
    for text in texts:
        for spelling in spellings():
            assert spelling not in text, f"{spelling!r} shown in {text[:300]!r}"


@pytest.fixture
def database(postgres_server):
    """A new database that the password user logs into; its URL without the password."""
    name = postgres_server.new_database().rsplit("/", 1)[1]
    return postgres_server.password_url(PASSWORD, database=name)


@pytest.mark.parametrize("form", FORMS)
def test_shown_urls_never_hold_the_password(form):
    url = FORMS[form]("postgresql://edgecomp_pw@db.lab:5432/results")
    shown = postgres.shown(url)
    assert_hidden(shown)
    assert shown.startswith("postgresql://edgecomp_pw:***@db.lab:5432/results")
    assert postgres.shown("postgresql://u@h/db?sslpassword=k3y") == \
        "postgresql://u@h/db?sslpassword=***"
    # A raw : in the user part belongs to the password; libpq reads it so too.
    assert postgres.shown("postgres://u:Sup3r%40sec:ret%2Fpw@h:5432/db") == \
        "postgres://u:***@h:5432/db"


@pytest.mark.parametrize("form", FORMS)
def test_the_right_password_in_any_form_is_never_printed_or_written(
        form, database, tmp_path, monkeypatch, capsys, caplog):
    url = FORMS[form](database)
    monkeypatch.setenv("EDGECOMP_DB", url)
    with Store() as store:  # the password works: libpq read it
        store.add_run([record("m")], command="edgecomp bench")
        assert_hidden(store.location, repr(store.db.location))
    caplog.set_level(logging.DEBUG)
    assert main(["compare", "--json", str(tmp_path / "out.json")]) == 0
    assert main(["report", "-o", str(tmp_path / "report.html")]) == 0
    out, err = capsys.readouterr()
    assert "edgecomp_pw:***@" in " ".join(out.split())  # compare's title names the store
    assert_hidden(out, err, caplog.text, (tmp_path / "out.json").read_text(),
                  (tmp_path / "report.html").read_text())


@pytest.mark.parametrize("form", FORMS)
def test_a_wrong_password_in_any_form_is_one_sentence_without_it(form, database,
                                                                monkeypatch, capsys):
    url = FORMS[form](database, PASSWORD[::-1])
    with pytest.raises(EdgecompError, match="password authentication failed") as caught:
        Store(url, timeout_s=5)
    assert_hidden(str(caught.value))
    for spelling in spellings(PASSWORD[::-1]):
        assert spelling not in str(caught.value)
    monkeypatch.setenv("EDGECOMP_DB", url)
    assert main(["compare"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the PostgreSQL results database" in err
    assert "Traceback" not in err and PASSWORD[::-1] not in err


def test_a_raw_at_sign_in_the_password_is_refused_without_any_of_it(postgres_server):
    # libpq ends the user part at the first @: the rest would be read as the host name
    # and quoted in libpq's messages.
    url = f"postgresql://edgecomp_pw:{PASSWORD}@127.0.0.1:{postgres_server.port}/x"
    with pytest.raises(InputError, match="percent-encode them") as caught:
        Store(url, timeout_s=5)
    assert_hidden(str(caught.value))


def test_a_key_value_connection_string_is_refused_and_no_file_is_made(tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGECOMP_DB", f"host=127.0.0.1 user=edgecomp_pw password={PASSWORD}")
    assert main(["compare"]) == 1
    err = capsys.readouterr().err
    assert "key=value connection string" in err
    assert_hidden(err)
    assert list(Path(tmp_path).iterdir()) == []


@pytest.mark.parametrize("form", FORMS)
def test_a_driver_text_quoting_the_password_becomes_a_sentence_without_it(form, database):
    import psycopg

    with Store(FORMS[form](database)) as store:
        for quoted in spellings()[:3]:
            error = store.db.error(psycopg.OperationalError(
                f'connection to server failed: password "{quoted}" was refused'),
                "recording a run", 5.0)
            assert "recording a run" in str(error) and "***" in str(error)
            assert_hidden(str(error))
