"""The SQLite results store: migrations from empty, round trips, atomic runs."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

from edgecomp.errors import InputError
from edgecomp.results.compare import compare_rows
from edgecomp.results.record import Agreement, Latency, ResultRecord
from edgecomp.results.store import MIGRATIONS, SCHEMA_VERSION, SQLite, Store
from tests.results.records import device, manifest


def record(precision: str, p50: float, *, fmt: str = "tflite", error: str | None = None,
           size: int = 1000) -> ResultRecord:
    return ResultRecord(
        model="m", technique="none", target="local", format=fmt, precision=precision,
        size_bytes=size, accuracy=98.0, float_accuracy=98.5, accuracy_delta=-0.5,
        agreement=Agreement(0.999, 0.01),
        latency_ms=None if error else Latency(p50, p50 * 1.1, p50 * 1.3, p50, 0.01, 50),
        load_ms=1.0, first_inference_ms=2.0, peak_rss_mb=50.0, rss_growth_mb=5.0,
        runtime="ai_edge_litert 2.3.0", threads=2, transport="local",
        device=None if error else device(),
        artifact_sha256=f"sha-{precision}-{fmt}", artifact_name=f"m.{precision}.{fmt}",
        source_sha256="src", calib_sha256="cal", calib_source="digits",
        manifest=manifest(precision=precision, format=fmt, file=f"m.{precision}.{fmt}"),
        samples_ms=[p50] * 50, error=error)


def test_migrates_an_empty_database_to_the_current_schema(tmp_path):
    path = tmp_path / "r.db"
    sqlite3.connect(path).close()  # an empty file, as a user might create
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION == len(MIGRATIONS)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    assert {"model", "p50_ms", "record_json", "energy_mj"} <= columns


def test_migrates_a_version_one_database_keeping_its_rows(tmp_path):
    path = tmp_path / "r.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](SQLite(db))
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs VALUES ('r1', 'now', 'deploy', '{}')")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION
        assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(InputError, match="newer"):
        Store(path)


def test_not_a_database_is_one_sentence(tmp_path):
    path = tmp_path / "r.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not an edgecomp results database"):
        Store(path)


def test_records_round_trip_with_raw_samples(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.add_run([record("fp32", 2.0), record("int8", 1.0)], command="deploy")
        back = store.records(with_samples=True)
    assert [r.precision for r in back] == ["fp32", "int8"]
    assert back[1].latency_ms == Latency(1.0, 1.1, 1.3, 1.0, 0.01, 50)
    assert back[1].samples_ms == [1.0] * 50
    assert back[0].agreement == Agreement(0.999, 0.01)


def test_failed_measurements_are_never_successes(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.add_run([record("int8", 0, error="lost the board")], command="deploy")
        assert store.records() == []
        failed = store.records(include_failed=True)
    assert len(failed) == 1 and not failed[0].ok


def test_compare_speedup_against_fp32_of_same_model_and_target():
    rows = compare_rows([record("fp32", 2.0, size=4000), record("int8", 0.5, size=1000),
                         record("fp32", 3.0, fmt="onnx")])
    by_precision = {(r.record.precision, r.record.format): r for r in rows}
    assert by_precision[("int8", "tflite")].speedup == pytest.approx(4.0)
    assert by_precision[("int8", "tflite")].size_ratio == pytest.approx(0.25)
    assert by_precision[("fp32", "onnx")].speedup == pytest.approx(1.0)
    assert rows[0].record.precision == "int8"  # fastest first


def test_compare_keeps_the_latest_result_per_artifact():
    rows = compare_rows([record("fp32", 2.0), record("fp32", 4.0)])
    assert len(rows) == 1 and rows[0].record.latency_ms.p50 == 4.0
    assert len(compare_rows([record("fp32", 2.0), record("fp32", 4.0)], history=True)) == 2


# ---------------------------------------------------------------------------------------
# Rows that could not be read back


def test_a_record_the_store_could_not_read_back_is_refused_and_nothing_written(results_db):
    """A record whose model is not a name (123, as an unchecked manifest once gave) or not
    valid Unicode is refused with one sentence; the store stays readable for everyone."""
    from tests.results.records import record as measured

    for bad, problem in ((123, "model: must be a string"),
                         ("m\ud800", "not valid Unicode")):
        with Store() as store:
            with pytest.raises(InputError, match=problem):
                store.add_run([measured(), dataclasses.replace(measured(), model=bad)],
                              command="bench")
            assert store.records() == [] and store.runs() == []


def test_rows_an_older_edgecomp_stored_malformed_are_left_out_with_one_warning(
        results_db, tmp_path, capsys, caplog):
    """A run stored before manifests were checked (its model 123) no longer breaks
    `compare` and `report` for everyone: its rows are left out, one warning names it."""
    from edgecomp.cli import main
    from tests.results.records import record as measured

    with Store() as store:
        good = store.add_run([measured("good")], command="edgecomp bench")
        bad = store.add_run([measured("bad"), measured("bad", seed=1)], command="edgecomp bench")
        rows = store.db.execute("SELECT id, record_json FROM results WHERE run_id = ?",
                                [bad]).fetchall()
        for row_id, text in rows:  # as stored when manifests were read unchecked
            data = json.loads(text)
            data["model"] = data["manifest"]["model"] = 123
            store.db.execute("UPDATE results SET record_json = ? WHERE id = ?",
                             [json.dumps(data), row_id])
    assert main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and good in out and bad not in out
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"left out 2 result(s) of run {bad}" in warnings[0]
    assert "model: must be a string, got 123" in warnings[0]
    assert main(["report", "-o", str(tmp_path / "report.html")]) == 0
    assert "good" in (tmp_path / "report.html").read_text()
