"""Not collected on its own: tests/test_isolation.py runs this file in a pytest session of
its own, whose HOME, XDG_* and EDGECOMP_* variables name a user's real folders. It does
what tests do that could reach them: a simulated board named like the user's (`sim-pi4`),
tools/sim-board's status and stop as a user runs them (no EDGECOMP_SIM_DIR), a connection
that keeps board facts, and a store opened by a command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edgecomp import paths
from edgecomp.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_session_keeps_to_its_own_folders(board, capsys):
    assert main(["targets", "check", board.name]) == 0  # keeps board facts in the cache
    assert main(["compare"]) == 0  # creates the session's store
    capsys.readouterr()
    for command in ("status", "stop"):  # every board sim-board knows of by default
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "sim-board"), command],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 1), done.stderr
    user = Path(os.environ["ISOLATION_PROBE_USER"])
    for place in (paths.targets_dir(), paths.profiles_dir(), paths.recipes_dir(),
                  paths.db_path(), paths.cache_dir(), paths.config_dir()):
        assert user not in place.parents, place
    assert paths.db_path().is_file()
