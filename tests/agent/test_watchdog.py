"""The agent with --watch-host exits, and frees the board lock, as soon as its input closes
or its parent dies; without the flag a closed stdin changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from edgecomp.agent.watchdog import EXIT_CODE
from edgecomp.remote.agent_bundle import agent_pyz
from tests.lockwatch import end, held, running, wait_for


def endless(model: Path, lock: Path) -> list[str]:
    return [sys.executable, str(agent_pyz()), "--watch-host", "measure", str(model),
            "--seconds", "3000", "--warmup-seconds", "0", "--lock", str(lock)]


def test_closing_the_agents_input_ends_it_and_frees_the_lock(onnx_model, tmp_path):
    lock = tmp_path / "board.lock"
    agent = subprocess.Popen(endless(onnx_model, lock), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: held(lock), 60), agent.stderr.read() if agent.poll() else ""
        agent.stdin.close()
        assert agent.wait(timeout=5) == EXIT_CODE
        assert not held(lock)
        assert b"the host closed the agent's input" in agent.stderr.read()
    finally:
        end(agent)


def test_the_agent_ends_when_its_parent_dies(onnx_model, tmp_path):
    """The parent killed while the agent's stdin stays open (held by this test)."""
    lock = tmp_path / "board.lock"
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
         f"agent = subprocess.Popen({endless(onnx_model, lock)!r}, stdin=sys.stdin)\n"
         "print(agent.pid, flush=True)\ntime.sleep(600)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        pid = int(parent.stdout.readline())
        assert wait_for(lambda: held(lock), 60)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_for(lambda: not held(lock), 5), "the lock is still held"
        assert json.loads(lock.read_text() or "{}").get("pid") in (None, pid)
    finally:
        parent.stdin.close()
        end(parent)
        try:
            os.kill(pid, signal.SIGKILL)  # only if the watchdog failed
        except (ProcessLookupError, UnboundLocalError):
            pass


def test_the_agents_children_end_with_it(tmp_path):
    """A child the agent started (a power probe's tegrastats) does not outlive it."""
    code = ("import subprocess, sys, time\n"
            "from edgecomp.agent.watchdog import watch_host\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "print(child.pid, flush=True)\n"
            "watch_host()\n"
            "time.sleep(300)\n")
    root = str(Path(__file__).resolve().parents[2])
    agent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": root})
    child = int(agent.stdout.readline())
    try:
        agent.stdin.close()
        assert agent.wait(timeout=5) == EXIT_CODE
        assert wait_for(lambda: not running(child), 5), "the child outlived the agent"
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


def test_without_the_flag_a_closed_input_changes_nothing(onnx_model):
    done = subprocess.run([sys.executable, str(agent_pyz()), "measure", str(onnx_model),
                           "--runs", "3", "--seconds", "0.2", "--warmup-seconds", "0"],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] and report["latency_ms"]["count"] >= 3
