"""One deploy across several simulated boards (real sshd each), measured at once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from edgecomp.cli import main
from edgecomp.results.store import Store
from tests.remote.test_ssh import descendants

pytestmark = pytest.mark.slow

QUICK = ["--runs", "20", "--seconds", "0.2", "--warmup-seconds", "0.05"]


def test_a_fleet_deploy_builds_once_measures_each_board_and_survives_a_dead_one(
        board, board_factory, tmp_path, capsys):
    """Three boards of one profile share one build; the last one's sshd is killed while
    it measures: its records are failures naming it, the other two boards' are intact and
    every record lands in one run."""
    other = board_factory("sim-second")
    doomed = board_factory("sim-doomed")
    out = tmp_path / "artifacts"
    outcome = {}

    def deploy():
        outcome["code"] = main(["deploy", "--target", board.name, "--target", other.name,
                                "--target", doomed.name, *QUICK, "--seconds", "1", "-o",
                                str(out), "--json", str(tmp_path / "r.json"), "--tag",
                                "fleet-test"])

    thread = threading.Thread(target=deploy)
    thread.start()
    deadline = time.time() + 600
    while time.time() < deadline and thread.is_alive() and not (
            list(doomed.workdir.glob("cache/*.tflite")) or
            list(doomed.workdir.glob("cache/*.onnx"))):
        time.sleep(0.2)  # until the doomed board is sent its first artifact
    time.sleep(1.0)  # its agent is running that artifact now
    assert thread.is_alive(), "the deploy ended before the board could be killed"
    for pid in [doomed.sshd_pid, *descendants(doomed.sshd_pid)]:
        os.kill(pid, signal.SIGKILL)  # the listener, its sessions and what they run
    thread.join(timeout=900)
    text = capsys.readouterr()
    assert outcome["code"] == 1  # some measurements failed

    results = json.loads((tmp_path / "r.json").read_text())
    by_target: dict[str, list[dict]] = {}
    for result in results:
        by_target.setdefault(result["target"], []).append(result)
    assert sorted(by_target) == sorted([board.name, other.name, doomed.name])
    for name in (board.name, other.name):
        assert len(by_target[name]) == 4
        for result in by_target[name]:
            assert result["error"] is None, result["error"]
            assert result["latency_ms"]["count"] >= 20 and result["accuracy"] > 90
            assert result["device"]["name"] == name
    assert len(by_target[doomed.name]) == 4
    assert any(r["error"] and doomed.name in r["error"] for r in by_target[doomed.name])
    # One build: the same files measured everywhere, written once.
    shas = {name: sorted(r["artifact_sha256"] for r in found)
            for name, found in by_target.items()}
    assert shas[board.name] == shas[other.name] == shas[doomed.name]
    assert len(list(out.glob("*.json"))) == 4 and not [p for p in out.iterdir() if p.is_dir()]
    # Each board planned its own threads; the plan in each record is its board's.
    assert {r["plan"]["profile"] for r in results} == {"pi4"}

    store = Store(Path(os.environ["EDGECOMP_DB"]))
    stored = store.records(tag="fleet-test", include_failed=True)
    assert len(stored) == 12 and len({r.run_id for r in stored}) == 1
    assert len(store.records(tag="fleet-test")) == 8 + sum(
        1 for r in by_target[doomed.name] if r["error"] is None)
    assert "the same artifacts across boards" in text.out

