"""The results store's tables: one schema with a version, its forward migrations, and how
raw latency samples are packed.

One row per measured artifact: the record as JSON beside the columns used for queries, and
its raw latency samples in a table of their own (zlib-compressed little-endian float64,
exact), read only when asked for. Each run has a row with its command, `--tag` and the git
commit and branch it was made from.

Each migration takes the open backend (`base.Backend`), inside the transaction that also
writes the new version; column types come from the backend.
"""

from __future__ import annotations

import json
import zlib
from contextlib import closing
from typing import Any, Callable


def pack_samples(samples: list[float]) -> bytes:
    """Latency samples as stored in `samples.data`: zlib over little-endian float64."""
    import numpy as np

    return zlib.compress(np.asarray(samples, dtype="<f8").tobytes(), 1)


def unpack_samples(data: bytes) -> list[float]:
    """The samples `pack_samples` stored, exactly."""
    import numpy as np

    return np.frombuffer(zlib.decompress(bytes(data)), dtype="<f8").tolist()


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
