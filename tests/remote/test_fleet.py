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


def test_a_fleet_deploy_builds_once_and_survives_a_dead_board(
        board, arm64_board, board_factory, tmp_path, capsys):
    """Two x86 boards and the emulated arm64 board in one deploy, sharing one build; the
    second x86 board's sshd is killed while it measures: its records are failures naming
    it, the other two boards' are intact and every record lands in one run."""
    doomed = board_factory("sim-fleet-doomed")
    out = tmp_path / "artifacts"
    outcome = {}

    def deploy():
        outcome["code"] = main(["deploy", "--target", board.name, "--target", doomed.name,
                                "--target", arm64_board.name, *QUICK, "--seconds", "1", "-o",
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
    assert sorted(by_target) == sorted([board.name, doomed.name, arm64_board.name])
    for name in (board.name, arm64_board.name):
        assert len(by_target[name]) == 4
        for result in by_target[name]:
            assert result["error"] is None, result["error"]
            assert result["latency_ms"]["count"] >= 20 and result["accuracy"] > 90
            assert result["device"]["target"]["name"] == name
    assert {r["emulated"] for r in by_target[arm64_board.name]} == {True}
    assert {r["emulated"] for r in by_target[board.name]} == {False}
    assert len(by_target[doomed.name]) == 4
    assert any(r["error"] and doomed.name in r["error"] for r in by_target[doomed.name])
    # The two x86 boards' plans ask for the same artifacts: built once, the very same files
    # measured on both. The arm64 board's ONNX plan takes int8 activations where x86's takes
    # uint8 (onnxruntime's fast path on each), so it gets a build of its own, in its folder.
    shas = {name: {(r["format"], r["precision"]): r["artifact_sha256"] for r in found}
            for name, found in by_target.items()}
    assert shas[board.name] == shas[doomed.name]
    assert shas[arm64_board.name][("onnx", "int8")] != shas[board.name][("onnx", "int8")]
    activations = {name: {r["manifest"]["activation_dtype"] for r in found
                          if (r["format"], r["precision"]) == ("onnx", "int8")}
                   for name, found in by_target.items()}
    assert activations == {board.name: {"uint8"}, doomed.name: {"uint8"},
                           arm64_board.name: {"int8"}}
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 2 and all(len(list(f.glob("*.json"))) == 4 for f in folders)
    assert {r["plan"]["profile"] for r in results} == {"pi4"}

    store = Store(Path(os.environ["EDGECOMP_DB"]))
    stored = store.records(tag="fleet-test", include_failed=True)
    assert len(stored) == 12 and len({r.run_id for r in stored}) == 1
    assert {r["run_id"] for r in results} == {stored[0].run_id}  # --json names the run
    assert len(store.records(tag="fleet-test")) == 8 + sum(
        1 for r in by_target[doomed.name] if r["error"] is None)
    assert "the same artifacts across boards" in text.out
    assert "emulated" in text.out


def test_stopping_a_board_by_another_name_is_refused(board_factory):
    """With EDGECOMP_SIM_DIR naming one board's state, `stop --name` of another board must
    not stop this one."""
    from tests.remote.conftest import sim_board

    first = board_factory("sim-keep")
    result = sim_board("stop", "--name", "sim-other", state=first.state)
    assert result.returncode == 1
    assert "holds board sim-keep, not sim-other" in result.stderr
    assert first.info["name"] == "sim-keep" and os.path.exists(f"/proc/{first.sshd_pid}")
    assert sim_board("status", state=first.state).returncode == 0
