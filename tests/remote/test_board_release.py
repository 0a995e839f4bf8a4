"""What edgecomp stops waiting for ends on the board too: a bench killed mid-run frees the
board lock at once and leaves no agent behind, and a board python that hangs is ended when
`targets check` gives up on it (the real simulated board, tools/sim-board)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecomp.cli import main
from edgecomp.hardware.targets import get_target, inventory_dir
from edgecomp.remote.ssh_board import RUN_MARKER
from tests.lockwatch import end, held, running, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def board_lock(board) -> Path:
    # The agent's default lock (edgecomp.agent.lock.default_lock_path) under the board's HOME.
    return board.state / "board-home" / ".cache" / "edgecomp" / "board.lock"


def lock_holder(path: Path) -> int | None:
    """The pid of the agent holding the board lock, while it holds it."""
    if not held(path):
        return None
    try:
        return json.loads(path.read_text() or "{}").get("pid")
    except ValueError:
        return None


def test_a_bench_killed_mid_run_frees_the_board_lock_at_once(board, deployed_artifact,
                                                              tmp_path):
    lock = board_lock(board)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    bench = subprocess.Popen(
        [sys.executable, "-m", "edgecomp.cli", "bench", str(deployed_artifact), "--target",
         board.name, "--seconds", "3000", "--warmup-seconds", "0", "--no-record"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd=tmp_path)
    runs = board.workdir / "runs"
    before = set(os.listdir(runs)) if runs.is_dir() else set()
    try:
        assert wait_for(lambda: lock_holder(lock) is not None, 120), "the bench never started"
        agent = lock_holder(lock)
        assert running(agent)
        time.sleep(1.0)  # well into the timed runs
        bench.send_signal(signal.SIGKILL)
        bench.wait(timeout=10)
        killed = time.monotonic()
        assert wait_for(lambda: not held(lock), 5), "the board is still locked"
        assert wait_for(lambda: not running(agent), 5), "the agent still runs on the board"
        assert time.monotonic() - killed < 5
        # A host killed outright cannot remove its run directory: it is marked as edgecomp's,
        # so the board's own sweep removes it (after 6 h); removed here for the later tests.
        left = sorted(set(os.listdir(runs)) - before)
        assert all((runs / name / RUN_MARKER).is_file() for name in left), left
    finally:
        end(bench)
        for name in (set(os.listdir(runs)) - before) if runs.is_dir() else ():
            shutil.rmtree(runs / name, ignore_errors=True)


def test_a_local_bench_killed_mid_run_frees_the_lock_at_once(deployed_artifact, tmp_path):
    """The same on this machine (`--target local`), with a lock of its own."""
    runtime = tmp_path / "runtime"
    lock = runtime / "edgecomp" / "board.lock"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    bench = subprocess.Popen(
        [sys.executable, "-m", "edgecomp.cli", "bench", str(deployed_artifact), "--target",
         "local", "--seconds", "3000", "--warmup-seconds", "0", "--no-record"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd=tmp_path)
    agent = None
    try:
        assert wait_for(lambda: lock_holder(lock) is not None, 120), "the bench never started"
        agent = lock_holder(lock)
        bench.send_signal(signal.SIGKILL)
        bench.wait(timeout=10)
        assert wait_for(lambda: not held(lock), 5), "the lock is still held"
        assert wait_for(lambda: not running(agent), 5), "the agent still runs"
    finally:
        end(bench)
        if agent is not None and running(agent):
            os.kill(agent, signal.SIGKILL)


def test_a_hanging_board_python_is_ended_when_targets_check_gives_up(board, tmp_path,
                                                                     capsys):
    pid_file = tmp_path / "stuck.pid"
    stuck = tmp_path / "stuck-python"
    stuck.write_text(f"#!/bin/sh\necho $$ >> {pid_file}\nexec sleep 300\n")
    stuck.chmod(0o755)
    target = get_target(board.name)
    path = inventory_dir() / "sim-hang.toml"
    path.write_text("[target]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in {
        "name": "sim-hang", "host": "127.0.0.1", "port": board.port, "user": target.user,
        "identity_file": target.identity_file, "profile": target.profile,
        "python": str(stuck), "workdir": target.workdir, "connect_timeout": 2.0}.items()))
    try:
        for _ in range(2):  # each retry used to leave one more behind
            assert main(["targets", "check", "sim-hang"]) == 1
    finally:
        path.unlink()
    err = capsys.readouterr().err
    assert "did not prepare" in err and "Traceback" not in err
    pids = [int(line) for line in pid_file.read_text().split()]
    assert len(pids) == 2
    assert wait_for(lambda: not any(running(pid) for pid in pids), 5), \
        f"still running on the board: {[pid for pid in pids if running(pid)]}"
