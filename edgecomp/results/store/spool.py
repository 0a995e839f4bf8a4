"""Runs that were measured but could not be recorded, kept on this machine until their store
takes them.

When recording fails after measuring (a server restarted, a network gone, a disk full), the
run's records go to one file per run (written atomically) in a folder of the spool named
after the store they were meant for (its shown location, which holds no password). The next
open of that store, by any command, or `edgecomp results push` records them; a file is
removed only once its run is committed, and a run already in the store (same run id) is not
recorded again, so a push that is interrupted or repeated never duplicates rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edgecomp import paths
from edgecomp.atomic import atomic_write_text, strict_json
from edgecomp.errors import EdgecompError, InputError
from edgecomp.results.record import ResultRecord

if TYPE_CHECKING:
    from edgecomp.results.store.store import Store

log = logging.getLogger(__name__)

SPOOL_VERSION = 1


def folder(store_name: str) -> Path:
    """The spool folder of the store shown as `store_name`."""
    return paths.spool_dir() / hashlib.sha256(store_name.encode()).hexdigest()[:16]


def keep(records: list[ResultRecord], *, run_id: str, command: str, store_name: str) -> Path:
    """Keep one run's records for the store shown as `store_name`; the file written."""
    path = folder(store_name) / f"{run_id}.json"
    atomic_write_text(path, strict_json({
        "spool_version": SPOOL_VERSION, "store": store_name, "run_id": run_id,
        "command": command, "records": [record.to_json() for record in records]}))
    return path


def pending(store_name: str) -> list[Path]:
    """The runs kept for the store shown as `store_name`, oldest first."""
    found = folder(store_name)
    if not found.is_dir():
        return []
    return sorted(found.glob("*.json"), key=lambda path: (path.stat().st_mtime, path.name))


def _read(path: Path) -> tuple[str, str, list[ResultRecord]]:
    """A kept run: its id, command and records."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the kept run {path} cannot be read ({exc}); move it away to go "
                         "on.") from None
    if not isinstance(data, dict) or data.get("spool_version") != SPOOL_VERSION or \
            not isinstance(data.get("records"), list):
        raise InputError(f"{path} is not a run kept by this edgecomp (spool version "
                         f"{SPOOL_VERSION}); move it away to go on.")
    records = [ResultRecord.from_json(item, source=f"{path}: records[{index}]")
               for index, item in enumerate(data["records"])]
    return str(data.get("run_id") or path.stem), str(data.get("command") or ""), records


def push(store: "Store") -> list[str]:
    """Record every run kept for `store`, each in its own transaction, removing its file
    once committed; the run ids recorded. A failure stops the push and keeps the rest."""
    done = []
    for path in pending(store.spool_name):
        run_id, command, records = _read(path)
        store.add_run(records, command=command, run_id=run_id)
        path.unlink(missing_ok=True)
        done.append(run_id)
    return done


def push_quietly(store: "Store") -> list[str]:
    """`push` where recording them is not what was asked for (opening the store for another
    command): a failure is a warning and the runs stay kept."""
    try:
        done = push(store)
    except EdgecompError as exc:
        log.warning("runs kept in %s were not recorded yet: %s", folder(store.spool_name), exc)
        return []
    if done:
        log.warning("recorded %d run(s) kept while %s could not take them: %s", len(done),
                    store.location, ", ".join(done))
    return done
