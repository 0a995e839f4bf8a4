"""A test session never touches the user's configuration, target inventory, results store,
cache or simulated-board state, whatever EDGECOMP_* and XDG_* variables name them (a run
with EDGECOMP_TARGETS set once deleted the user's own sim-pi4 target): tests/conftest.py
gives each session its own, and only the caches it documents are shared."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SENTINEL_TARGET = """\
# the user's own board
[target]
name = "sim-pi4"
host = "127.0.0.1"
port = 2222
profile = "pi4"
"""


def user_folders(user: Path, board_pid: int) -> dict[str, str]:
    """A user's edgecomp files in every place the defaults and overrides name, each
    holding a sentinel: a sim-pi4 target, a store, a profile, a recipe, cached facts and
    running simulated board (`board_pid` stands for its sshd) whose state names the user's
    target file (what `tools/sim-board stop` deletes). Returns the environment that points
    at them."""
    home = user / "home"
    places = {
        "inventory": user / "inventory",  # $EDGECOMP_TARGETS
        "xdg-inventory": user / "xdg-config" / "edgecomp" / "targets",
        "home-inventory": home / ".config" / "edgecomp" / "targets",
    }
    for folder in places.values():
        folder.mkdir(parents=True)
        (folder / "sim-pi4.toml").write_text(SENTINEL_TARGET)
        (folder / "known_hosts").write_text("[127.0.0.1]:2222 ssh-ed25519 AAAAuser\n")
    for store in (user / "db" / "results.db", user / "xdg-data" / "edgecomp" / "results.db",
                  home / ".local" / "share" / "edgecomp" / "results.db"):
        store.parent.mkdir(parents=True)
        store.write_bytes(b"the user's results")
    for folder in (user / "profiles", user / "recipes"):
        folder.mkdir()
        (folder / "mine.toml").write_text("# the user's own\n")
    for cache in (user / "cache", user / "xdg-cache" / "edgecomp", home / ".cache" / "edgecomp"):
        (cache / "boards").mkdir(parents=True)
        (cache / "boards" / "sim-pi4.facts.json").write_text('{"the user": "facts"}')
    states = {"sim-dir": user / "sim-dir",  # $EDGECOMP_SIM_DIR
              "xdg-state": user / "xdg-state" / "edgecomp" / "sim-board" / "sim-pi4",
              "home-state": home / ".local" / "state" / "edgecomp" / "sim-board" / "sim-pi4"}
    for inventory, state in zip(places.values(), states.values()):
        state.mkdir(parents=True)
        (state / "board.json").write_text(json.dumps({
            "name": "sim-pi4", "arch": "x86_64", "port": 2222,
            "target_file": str(inventory / "sim-pi4.toml"),
            "known_hosts_line": "[127.0.0.1]:2222 ssh-ed25519 AAAAuser",
            "known_hosts": str(inventory / "known_hosts"), "python": "python3",
            "emulator": None}))
        (state / "sshd.pid").write_text(f"{board_pid}\n")
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(user / "xdg-config"),
            "XDG_DATA_HOME": str(user / "xdg-data"), "XDG_CACHE_HOME": str(user / "xdg-cache"),
            "XDG_STATE_HOME": str(user / "xdg-state"),
            "EDGECOMP_TARGETS": str(places["inventory"]), "EDGECOMP_DB": str(user / "db" /
                                                                            "results.db"),
            "EDGECOMP_PROFILES": str(user / "profiles"), "EDGECOMP_RECIPES": str(user / "recipes"),
            "EDGECOMP_CACHE": str(user / "cache"), "EDGECOMP_SIM_DIR": str(states["sim-dir"]),
            "EDGECOMP_TARGET": "sim-pi4"}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            if path.is_file() else "folder" for path in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_a_session_leaves_the_users_files_alone(tmp_path):
    user = tmp_path / "user"
    board = subprocess.Popen(["sleep", "600"])  # the user's board's sshd, as far as pids go
    try:
        env = {**os.environ, **user_folders(user, board.pid), "ISOLATION_PROBE_USER": str(user),
               "PYTHONPATH": str(ROOT)}
        # The shared caches stay as this session has them (tests/conftest.py pinned them):
        # the board's python is not rebuilt under the fake home.
        for shared in ("EDGECOMP_SIM_VENV", "EDGECOMP_SIM_CACHE", "EDGECOMP_TEST_CACHE"):
            if shared in os.environ:
                env[shared] = os.environ[shared]
        before = snapshot(user)
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 str(ROOT / "tests" / "remote" / "isolation_probe.py")],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        changed = sorted(set(before.items()) ^ set(snapshot(user).items()))
        assert not changed, f"the test session changed the user's files: {changed}"
        assert board.poll() is None, "the test session stopped the user's board"
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    finally:
        board.kill()
        board.wait()
