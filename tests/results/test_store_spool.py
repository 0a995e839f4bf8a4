"""A measurement is never thrown away: the store is checked before anything is measured, and
a run the store fails to record after measuring is printed, written to --json and kept in
the spool, which the next command that opens the store (or `edgecomp results push`)
records, each run exactly once."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from edgecomp import paths
from edgecomp.cli import main
from edgecomp.pipeline import bench as bench_module
from edgecomp.pipeline import deploy as deploy_module
from edgecomp.results.store import Store, spool, spool_name
from tests.results.test_identity import FACTORY, FAST, foreign_onnx
from tests.results.test_store_secrets import PASSWORD, assert_hidden

BENCH = FAST[4:]  # on `local`, briefly


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "net" / "model.onnx"
    foreign_onnx(path, seed=0)
    return path


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own, to stop and start again."""
    from tests.pgserver import PostgresServer, binaries

    if binaries() is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    server = PostgresServer().start()
    yield server
    server.stop()


def never_measured(monkeypatch) -> list[str]:
    """Where deploy and bench would reach a board: each reach is listed."""
    reached: list[str] = []

    def connect(names, stack):
        reached.extend(names)
        raise AssertionError("a board was reached")

    monkeypatch.setattr(bench_module, "connect", connect)
    monkeypatch.setattr(deploy_module, "connect", connect)
    return reached


@pytest.mark.parametrize("command", [["bench", "MODEL", *BENCH], ["deploy", *FAST]])
def test_a_wrong_password_fails_before_anything_is_measured(command, model, postgres_server,
                                                            monkeypatch, capsys):
    url = postgres_server.password_url(PASSWORD).replace(
        "://edgecomp_pw@", "://edgecomp_pw:wrong-Pa55@")
    monkeypatch.setenv("EDGECOMP_DB", url)
    reached = never_measured(monkeypatch)
    argv = [str(model) if word == "MODEL" else word for word in command]
    assert main(argv) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "password authentication failed" in err and "Traceback" not in err
    assert "wrong-Pa55" not in err
    assert reached == []


def halted_after_measuring(monkeypatch, stop, stage=bench_module) -> None:
    """Call `stop` once the boards have measured and before the run is recorded (by bench,
    or the `stage` module given)."""
    stamp = stage.stamp

    def stamped(*args, **kwargs):
        stop()
        return stamp(*args, **kwargs)

    monkeypatch.setattr(stage, "stamp", stamped)


def kept_runs() -> list:
    return sorted(paths.spool_dir().rglob("*.json"))


def test_a_server_stopped_while_measuring_keeps_the_run_and_push_records_it_once(
        own_server, model, tmp_path, monkeypatch, capsys):
    name = own_server.new_database().rsplit("/", 1)[1]
    url = own_server.password_url(PASSWORD, database=name).replace(
        "://edgecomp_pw@", "://edgecomp_pw:Sup3r%40sec%3Aret%2Fpw@")
    monkeypatch.setenv("EDGECOMP_DB", url)
    halted_after_measuring(monkeypatch, own_server.halt)
    out_json = tmp_path / "results.json"
    assert main(["bench", str(model), *BENCH, "--json", str(out_json)]) == 1
    out, err = capsys.readouterr()
    (kept,) = spool.pending(spool_name(url))
    written = json.loads(out_json.read_text())
    assert len(written) == 1 and written[0]["latency_ms"]["p50"] > 0
    assert "1 artifact(s) measured" in out  # the table is printed all the same
    assert str(kept) in err
    assert "edgecomp results push" in err and "Traceback" not in err
    assert_hidden(out, err, kept.read_text(), out_json.read_text())
    own_server.resume()
    saved = tmp_path / "kept.json"
    shutil.copy(kept, saved)
    assert main(["results", "push"]) == 0
    assert "recorded 1 kept run(s)" in capsys.readouterr().out
    assert spool.pending(spool_name(url)) == []
    shutil.copy(saved, kept)  # as if a push was stopped between its commit and the removal
    assert main(["results", "push", "--store", url]) == 0
    assert main(["results", "push"]) == 0
    assert "no runs are kept" in capsys.readouterr().out
    with Store(url) as store:
        (stored,) = store.records(with_samples=True)
        assert len(store.runs()) == 1
    assert stored.run_id == written[0]["run_id"]
    assert stored.samples_ms == written[0]["samples_ms"]


def test_a_sqlite_store_that_fails_keeps_the_run_for_the_next_command(model, tmp_path,
                                                                       monkeypatch, capsys,
                                                                       caplog):
    db = tmp_path / "results.db"
    monkeypatch.setenv("EDGECOMP_DB", str(db))
    # The file is overwritten by something that is not a database while the board works.
    halted_after_measuring(monkeypatch, lambda: db.write_bytes(b"not a database" * 100))
    assert main(["bench", str(model), *BENCH, "--json", str(tmp_path / "r.json")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "is not an edgecomp results database" in err and "are kept in" in err
    assert len(spool.pending(spool_name(db))) == 1
    assert json.loads((tmp_path / "r.json").read_text())[0]["latency_ms"]["p50"] > 0
    db.unlink()
    monkeypatch.undo()
    monkeypatch.setenv("EDGECOMP_DB", str(db))
    assert main(["compare"]) == 0  # the next command that opens the store records it
    assert "model" in capsys.readouterr().out
    assert "recorded 1 run(s) kept while" in caplog.text
    assert spool.pending(spool_name(db)) == []
    with Store(db) as store:
        assert len(store.records()) == 1 and store.pushed == []


def test_a_deploy_whose_store_fails_after_measuring_keeps_the_run(tmp_path, monkeypatch,
                                                                   capsys):
    (tmp_path / "netdef.py").write_text(FACTORY.format(seed=1, hidden=8))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "netdef", raising=False)
    db = tmp_path / "results.db"
    monkeypatch.setenv("EDGECOMP_DB", str(db))
    halted_after_measuring(monkeypatch, lambda: db.write_bytes(b"not a database" * 100),
                           stage=deploy_module)
    assert main(["deploy", "netdef:make", *FAST, "--json", "r.json"]) == 1
    out, err = capsys.readouterr()
    assert "artifact(s) measured" in out and "edgecomp results push" in err
    written = json.loads((tmp_path / "r.json").read_text())
    (kept,) = spool.pending(spool_name(db))
    assert [r["run_id"] for r in json.loads(kept.read_text())["records"]] == \
        [r["run_id"] for r in written]
    db.unlink()
    assert main(["results", "push"]) == 0
    with Store(db) as store:
        assert len(store.records()) == len(written)


def test_a_spool_that_cannot_be_written_still_leaves_the_table_and_json(model, tmp_path,
                                                                        monkeypatch, capsys):
    db = tmp_path / "results.db"
    monkeypatch.setenv("EDGECOMP_DB", str(db))
    (tmp_path / "state").write_text("a file where the state folder would be")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    halted_after_measuring(monkeypatch, lambda: db.write_bytes(b"not a database" * 100))
    assert main(["bench", str(model), *BENCH, "--json", str(tmp_path / "r.json")]) == 1
    out, err = capsys.readouterr()
    assert "1 artifact(s) measured" in out
    assert "could not be kept on this machine either" in " ".join(err.split())
    assert "Traceback" not in err
    assert json.loads((tmp_path / "r.json").read_text())[0]["latency_ms"]["p50"] > 0


def test_add_run_with_a_known_run_id_records_nothing_more(tmp_path):
    from tests.results.records import record

    with Store(tmp_path / "r.db") as store:
        assert store.add_run([record("a")], command="bench", run_id="r1") == "r1"
        store.add_run([record("a"), record("b")], command="bench", run_id="r1")
        assert [r.model for r in store.records()] == ["a"]
