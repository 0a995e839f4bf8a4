"""What edgecomp runs on a board with the board's own python, and the note of what a lost
link left there.

On the board edgecomp removes only what it can prove it made: run directories named like
its run ids that hold its marker file, and upload temporaries named like its own. What a
lost link kept a run from removing is noted on this machine (`remember_left_behind`) and
removed by the next run to the same target; the board's own sweep (PREFLIGHT) catches the
rest.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from edgecomp import paths
from edgecomp.atomic import atomic_write_json

log = logging.getLogger(__name__)


RUN_MARKER = ".edgecomp-run"  # in each run directory this edgecomp created


RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")


TMP_NAME = re.compile(r"^\.tmp-[0-9a-f]{16}-[0-9a-f]{8}$")


# Run on the board with its python: resolve the work directory, sweep what earlier runs
# of edgecomp left behind (and only that), create the cache and this run's directory
# with its marker (one round trip). A run directory is swept when
# it is named like a run id, holds the marker and is older than 6 h (its connection
# died); an upload temporary when it is named like one and no process has it open (the
# upload's sftp session ended with its connection; read from /proc) and it is untouched
# for a minute (an upload being committed has just been written), or when it is
# untouched for 10 minutes (an upload in progress writes to it all the time).
PREFLIGHT = """
import json, os, re, shutil, sys, time
work = os.path.abspath(os.path.expanduser(sys.argv[1]))
run_id, marker = sys.argv[2], sys.argv[3]
run_name, tmp_name = re.compile(sys.argv[4]), re.compile(sys.argv[5])
runs, cache = os.path.join(work, "runs"), os.path.join(work, "cache")
now = time.time()
def age(path):
    try:
        return now - os.lstat(path).st_mtime
    except OSError:
        return 0
if os.path.isdir(runs):
    for name in os.listdir(runs):
        path = os.path.join(runs, name)
        if run_name.match(name) and name != run_id and not os.path.islink(path) \\
                and os.path.isfile(os.path.join(path, marker)) and age(path) > 6 * 3600:
            shutil.rmtree(path, ignore_errors=True)
def open_files():
    if not os.path.isdir("/proc/self/fd"):
        return None
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                fds = os.listdir("/proc/%s/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    found.add(os.readlink("/proc/%s/fd/%s" % (pid, fd)))
                except OSError:
                    pass
    return found
if os.path.isdir(cache):
    temps = [os.path.join(cache, name) for name in os.listdir(cache) if tmp_name.match(name)]
    temps = [path for path in temps if os.path.isfile(path) and not os.path.islink(path)]
    in_use = open_files() if temps else None
    for path in temps:
        if age(path) > 600 or (in_use is not None and age(path) > 60
                               and os.path.realpath(path) not in in_use):
            os.remove(path)
mine = os.path.join(runs, run_id)
for path in (cache, mine):
    if not os.path.isdir(path):
        os.makedirs(path)
open(os.path.join(mine, marker), "a").close()
print(json.dumps({"workdir": work, "python": sys.version.split()[0]}))
"""


# Before an upload: is the file in the cache, and is it what its name says? A copy that
# does not hash to its name (corrupted, or replaced) is removed, and uploaded again. The
# free space is that of the nearest folder there (a model's folder may not exist yet).
CACHE_CHECK = """
import hashlib, json, os, shutil, sys
path, expected = sys.argv[1:3]
where = os.path.dirname(path)
while not os.path.isdir(where):
    where = os.path.dirname(where)
state = "missing"
if os.path.isfile(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    state = "ok" if digest.hexdigest() == expected else "damaged"
    if state == "damaged":
        os.remove(path)
print(json.dumps({"state": state, "free_bytes": shutil.disk_usage(where).free}))
"""


# Verify an upload by hash on the board, then move it into place atomically.
COMMIT_UPLOAD = """
import hashlib, os, sys
tmp, final, expected = sys.argv[1:4]
digest = hashlib.sha256()
with open(tmp, "rb") as handle:
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
if digest.hexdigest() != expected:
    os.remove(tmp)
    sys.exit("sha256 mismatch after upload")
if not os.path.isdir(os.path.dirname(final)):
    os.makedirs(os.path.dirname(final))
os.rename(tmp, final)
"""


# At the end of a run: this run's directory (only with its marker) and the upload
# temporaries this run left (only names shaped like edgecomp's).
CLEANUP = """
import os, re, shutil, sys
run_dir, marker, tmp_name = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
if run_dir and os.path.isfile(os.path.join(run_dir, marker)) and not os.path.islink(run_dir):
    shutil.rmtree(run_dir, ignore_errors=True)
for path in sys.argv[4:]:
    if tmp_name.match(os.path.basename(path)) and os.path.isfile(path):
        os.remove(path)
"""


def left_behind_file(target: str) -> Path:
    """Where this machine notes what lost links left on `target`."""
    return paths.cache_dir() / "boards" / f"{target}.left-behind.json"


def left_behind(target: str) -> list[dict[str, Any]]:
    """The notes of run directories and temporaries lost links left on `target`."""
    try:
        entries = json.loads(left_behind_file(target).read_text())
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def remember_left_behind(target: str, run_dir: str, temporaries: list[str]) -> None:
    """Note a run's directory and temporaries, which a lost link kept it from removing:
    edgecomp made them, so the next run to this target removes them."""
    entry = {"run_dir": run_dir, "temporaries": sorted(temporaries)}
    try:
        atomic_write_json(left_behind_file(target), [*left_behind(target), entry])
    except OSError as exc:  # the board's own sweep removes them later
        log.warning("could not note what %s left on %s: %s", Path(run_dir).name, target, exc)


def forget_left_behind(target: str, removed: list[dict[str, Any]]) -> None:
    """Drop the notes of what was removed (notes added meanwhile stay)."""
    remaining = [e for e in left_behind(target) if e not in removed]
    if remaining:
        atomic_write_json(left_behind_file(target), remaining)
    else:
        left_behind_file(target).unlink(missing_ok=True)
