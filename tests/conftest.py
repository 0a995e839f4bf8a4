"""Shared fixtures: an isolated store and cache, the trained demo model, digits data."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Every test session gets its own results database, cache, user config, target inventory
# and simulated-board state, so tests never touch the user's files and never depend on
# them, whatever EDGECOMP_* or XDG_* variables the user's shell sets (a suite run with
# EDGECOMP_TARGETS naming the user's inventory once deleted the user's own sim-pi4 target).
# Shared with the user, because they are caches rebuilt from pinned packages that no test
# changes: the simulated boards' pythons (EDGECOMP_SIM_VENV, the x86_64 venv;
# EDGECOMP_SIM_CACHE, the arm64 rootfs and wheels, under $EDGECOMP_TEST_CACHE when set)
# and the local board's measurement lock (XDG_RUNTIME_DIR), which exists to be shared.
# tests/test_isolation.py runs a session against a user's folders and checks them unchanged.
SHARED_CACHES = ("EDGECOMP_TEST_CACHE", "EDGECOMP_SIM_VENV", "EDGECOMP_SIM_CACHE",
                 "EDGECOMP_SIM_MIRROR")


def _isolate_session(home: Path) -> None:
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgecomp"
    test_cache = os.environ.get("EDGECOMP_TEST_CACHE")
    os.environ.setdefault("EDGECOMP_SIM_VENV", str(user_cache / "sim-board-venv"))
    os.environ.setdefault("EDGECOMP_SIM_CACHE", str(Path(test_cache) / "sim-board-arm64")
                          if test_cache else str(user_cache / "sim-board-arm64"))
    for name in [name for name in os.environ
                 if name.startswith("EDGECOMP_") and name not in SHARED_CACHES]:
        del os.environ[name]  # e.g. the user's EDGECOMP_SIM_DIR, EDGECOMP_TARGET, ...
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                             ("XDG_CACHE_HOME", "xdg-cache"), ("XDG_STATE_HOME", "state")):
        os.environ[variable] = str(home / folder)
    os.environ["EDGECOMP_DB"] = str(home / "results.db")
    os.environ["EDGECOMP_CACHE"] = test_cache or str(home / "cache")
    os.environ["EDGECOMP_TARGETS"] = str(home / "targets")
    os.environ["EDGECOMP_PROFILES"] = str(home / "profiles")
    os.environ["EDGECOMP_RECIPES"] = str(home / "recipes")


_SESSION_HOME = Path(tempfile.mkdtemp(prefix="edgecomp-tests-"))
_isolate_session(_SESSION_HOME)
# Every test exports afresh; the artifact cache's own tests turn it on (artifact_cache).
os.environ["EDGECOMP_ARTIFACT_CACHE"] = "off"


@pytest.fixture
def artifact_cache(tmp_path, monkeypatch):
    """The artifact cache turned on, in a folder of this test's own: its path."""
    folder = tmp_path / "artifact-cache"
    monkeypatch.setenv("EDGECOMP_ARTIFACT_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def demo_source():
    """The built-in demo CNN, trained once per session (or taken from EDGECOMP_TEST_CACHE)."""
    from edgecomp.model.demo import demo_model

    return demo_model()


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory):
    """Calibration and evaluation .npz files cut from scikit-learn's digits."""
    from edgecomp.model.data import demo_digits

    folder = tmp_path_factory.mktemp("digits")
    train, val = demo_digits("train"), demo_digits("val")
    np.savez(folder / "calib.npz", x=train.x[:200])
    np.savez(folder / "val.npz", x=val.x, y=val.y)
    return folder / "calib.npz", folder / "val.npz"


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test session (see tests/pgserver.py)."""
    from tests.pgserver import PostgresServer, binaries

    if binaries() is None:
        pytest.skip("PostgreSQL's initdb is not installed (Debian package postgresql; "
                    ".ci/run installs it)")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty PostgreSQL database on the session's server: its URL."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def results_db(request, tmp_path, monkeypatch):
    """EDGECOMP_DB pointing at a new, empty store: a SQLite file, then a real PostgreSQL
    database; a test using it runs once against each. Yields the location."""
    if request.param == "sqlite":
        location = str(tmp_path / "results.db")
    else:
        location = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("EDGECOMP_DB", location)
    yield location
