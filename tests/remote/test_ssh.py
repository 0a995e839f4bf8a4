"""The SSH runner against a real sshd (tools/sim-board), end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgecomp.cli import main
from edgecomp.errors import DeviceError
from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.remote.local import LocalTransport
from edgecomp.remote.ssh import SshTransport
from edgecomp.results.store import Store
from edgecomp.hardware.targets import get_target, inventory_known_hosts
from edgecomp.pipeline import agent

pytestmark = pytest.mark.slow

QUICK = ["--runs", "20", "--seconds", "0.2", "--warmup-seconds", "0.05"]


@pytest.fixture(scope="module")
def deployed(board, tmp_path_factory):
    out = tmp_path_factory.mktemp("ssh-deploy")
    code = main(["deploy", "--target", board.name, *QUICK, "-o", str(out / "artifacts"),
                 "--json", str(out / "results.json")])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (sshd sessions leave its process group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def runs_left(board) -> list[str]:
    runs = board.workdir / "runs"
    return sorted(os.listdir(runs)) if runs.is_dir() else []


def test_demo_deploys_over_ssh_with_the_board_state(deployed, board):
    _, results = deployed
    assert len(results) == 4
    for result in results:
        assert result["transport"] == "ssh" and result["target"] == board.name
        assert result["error"] is None and result["latency_ms"]["count"] >= 20
        device = result["device"]
        assert device["target"]["name"] == board.name and device["target"]["profile"] == "pi4"
        assert device["device_before"]["cores"] >= 1
        assert device["device_after"]["mem_total_mb"] > 0
        assert result["accuracy"] > 90
    assert runs_left(board) == []  # the run's work directory is gone after success


def test_board_python_has_no_torch(board):
    target = get_target(board.name)
    result = subprocess.run([target.python, "-c", "import torch"], capture_output=True)
    assert result.returncode != 0


def test_same_artifact_agrees_between_ssh_and_local(deployed, board):
    out, results = deployed
    tflite = next(r for r in results if r["format"] == "tflite" and r["precision"] == "fp32")
    artifact = out / "artifacts" / tflite["artifact_name"]
    options = MeasureOptions(runs=200, seconds=0.3, warmup_seconds=0.1, threads=1)
    local, remote = [], []
    with SshTransport(get_target(board.name)) as ssh, LocalTransport() as here:
        for _ in range(6):  # interleaved, so a busy moment on the machine hits both
            local.append(agent.measure(here, artifact, options).latency_ms.p50)
            remote.append(agent.measure(ssh, artifact, options).latency_ms.p50)
    # On this shared VM a process's p50 lands in one of two modes ~1.5x apart whatever
    # launched it (seen with both pythons directly), so compare each side's best process.
    ratio = min(remote) / min(local)
    assert 0.67 <= ratio <= 1.5, (local, remote)  # same agent, same runtime: same ballpark


def test_redeploying_the_same_artifact_transfers_nothing(deployed, board):
    out, results = deployed
    artifact = out / "artifacts" / results[0]["artifact_name"]
    with SshTransport(get_target(board.name)) as ssh:
        agent.measure(ssh, artifact, MeasureOptions(runs=5, seconds=0, warmup_runs=1,
                                             warmup_seconds=0))
        assert ssh.files_sent == 0 and ssh.bytes_sent == 0


def test_upload_is_content_addressed_and_verified(board, tmp_path):
    artifact = tmp_path / "weird name; $(touch pwned).onnx"
    artifact.write_bytes(os.urandom(4096))
    with SshTransport(get_target(board.name)) as ssh:
        remote = ssh.push(artifact)
        assert ssh.files_sent == 1
        assert Path(remote).name.endswith(".onnx") and "$" not in remote
        assert Path(remote).read_bytes() == artifact.read_bytes()
        ssh.push(artifact)
        assert ssh.files_sent == 1
    assert not list(board.workdir.glob("cache/.tmp-*"))
    assert not (Path.home() / "pwned").exists()


def test_two_concurrent_benches_serialize_through_the_board_lock(deployed, board):
    out, results = deployed
    artifact = out / "artifacts" / results[0]["artifact_name"]
    # Long enough that the two overlap however the machine schedules their start-up.
    options = MeasureOptions(runs=5, seconds=3.0, warmup_runs=1, warmup_seconds=0)
    reports = []

    def bench():
        with SshTransport(get_target(board.name)) as ssh:
            reports.append(agent.measure(ssh, artifact, options))

    threads = [threading.Thread(target=bench) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    waits = sorted(r.lock_wait_s for r in reports)
    assert len(reports) == 2 and waits[1] >= 0.5, waits


def test_failure_leaves_no_work_directory_and_no_success_row(board, tmp_path, capsys):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3" + os.urandom(100))
    db = Path(os.environ["EDGECOMP_DB"])
    before = len(Store(db).records(target=board.name))
    code = main(["bench", str(broken), "--target", board.name, *QUICK])
    text = capsys.readouterr()
    assert code == 1
    assert "not a readable tflite model" in text.err or "could not load" in text.err
    assert len(Store(db).records(target=board.name)) == before
    assert runs_left(board) == []


def test_missing_runtime_on_the_board_names_the_package(board, deployed, tmp_path):
    out, results = deployed
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    target = get_target(board.name)
    from dataclasses import replace

    with SshTransport(replace(target, python=str(bare / "bin" / "python"))) as ssh:
        with pytest.raises(DeviceError, match="pip install ai-edge-litert"):
            artifact = next(r for r in results if r["format"] == "tflite")["artifact_name"]
            agent.measure(ssh, out / "artifacts" / artifact, MeasureOptions(runs=1, seconds=0))


def test_changed_host_key_is_refused_loudly(board, tmp_path):
    known = inventory_known_hosts()
    saved = known.read_text()
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    fake_key = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known.write_text("".join(line + "\n" for line in saved.splitlines()
                             if f"]:{board.port} " not in line)
                     + f"[127.0.0.1]:{board.port} {fake_key}\n")
    try:
        with pytest.raises(DeviceError, match="CHANGED") as err:
            SshTransport(get_target(board.name))
        assert "will not connect" in str(err.value)
        # `trust` never replaces a key either.
        assert main(["targets", "trust", board.name, "--yes"]) == 1
        assert fake_key in known.read_text()
    finally:
        known.write_text(saved)


def test_unknown_host_key_is_refused_until_trusted(board, capsys):
    known = inventory_known_hosts()
    saved = known.read_text()
    known.write_text("".join(line + "\n" for line in saved.splitlines()
                             if f"]:{board.port} " not in line))
    try:
        with pytest.raises(DeviceError, match=f"edgecomp targets trust {board.name}") as err:
            SshTransport(get_target(board.name))
        assert "SHA256:" in str(err.value)
        assert main(["targets", "trust", board.name, "--yes"]) == 0
        assert f"[127.0.0.1]:{board.port}" in known.read_text()
        with SshTransport(get_target(board.name)) as ssh:
            assert agent.info(ssh).python
    finally:
        known.write_text(saved)


def test_unreachable_board_is_one_sentence(board, capsys):
    from dataclasses import replace

    target = replace(get_target(board.name), port=1, connect_timeout=2.0)
    with pytest.raises(DeviceError, match="cannot reach"):
        SshTransport(target)


def test_a_missing_identity_file_is_named_not_an_unreachable_board(board, tmp_path):
    """A missing key file said "is the board on and sshd running?"."""
    from dataclasses import replace

    missing = tmp_path / "no-such-key"
    with pytest.raises(DeviceError) as err:
        SshTransport(replace(get_target(board.name), identity_file=str(missing)))
    message = str(err.value)
    assert f"the identity_file {missing} does not exist" in message
    assert "is the board on" not in message


def test_no_credentials_at_all_says_so_and_what_was_tried(board, tmp_path, monkeypatch):
    """No identity_file, no ssh-agent, no default keys: it said "is the board on"."""
    from dataclasses import replace

    monkeypatch.setenv("HOME", str(tmp_path))  # a home without ~/.ssh keys
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(DeviceError) as err:
        SshTransport(replace(get_target(board.name), identity_file=None))
    message = " ".join(str(err.value).split())
    assert "answered, but edgecomp had no usable credentials" in message
    assert "ssh-agent (none running: SSH_AUTH_SOCK is not set)" in message
    assert f"the default keys in {tmp_path / '.ssh'} (none exist" in message
    assert "is the board on" not in message


def test_a_refused_key_and_an_unreachable_board_keep_their_own_sentences(board, tmp_path):
    from dataclasses import replace

    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    target = get_target(board.name)
    with pytest.raises(DeviceError, match="refused authentication as"):
        SshTransport(replace(target, identity_file=str(stranger)))
    with pytest.raises(DeviceError, match="is the board on and sshd running"):
        SshTransport(replace(target, identity_file=str(tmp_path / "no-such-key"), port=1,
                             connect_timeout=2.0))


def test_sshd_killed_mid_run_gives_a_clear_error_and_no_success_row(deployed, board_factory,
                                                                    capsys):
    out, results = deployed
    doomed = board_factory("sim-doomed")
    artifact = out / "artifacts" / results[0]["artifact_name"]
    outcome = {}

    def bench():
        outcome["code"] = main(["bench", str(artifact), "--target", "sim-doomed", "--runs",
                                "10", "--seconds", "6", "--warmup-seconds", "0"])

    thread = threading.Thread(target=bench)
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list(doomed.workdir.glob("cache/*.tflite")) \
            and not list(doomed.workdir.glob("cache/*.onnx")):
        time.sleep(0.2)
    time.sleep(1.5)  # the agent is timing now
    for pid in [doomed.sshd_pid, *descendants(doomed.sshd_pid)]:
        os.kill(pid, signal.SIGKILL)  # the listener, its sessions and what they run
    thread.join(timeout=120)
    text = capsys.readouterr()
    assert outcome["code"] == 1
    assert "sim-doomed" in text.err and ("lost the connection" in text.err or
                                         "cannot reach" in text.err)
    store = Store(Path(os.environ["EDGECOMP_DB"]))
    assert store.records(target="sim-doomed") == []
    assert len(store.records(target="sim-doomed", include_failed=True)) == 1


def test_plan_uses_the_cores_the_board_reports(deployed, board):
    """Threads come from the agent's `info` on the board, not the profile's 4 cores."""
    _, results = deployed
    with SshTransport(get_target(board.name)) as ssh:
        cores = agent.info(ssh).online_cores
    for result in results:
        threads = result["plan"]["decisions"]["threads"]
        assert threads["value"] == min(cores, result["threads"]) == result["threads"]
        if cores != 4:
            assert f"the agent on {board.name} reports {cores} online cores" in threads["reason"]
    tflite = [r for r in results if r["format"] == "tflite"]
    assert {r["device"]["delegate"] for r in tflite} == {"xnnpack"}  # the plan's delegate


def test_target_runtime_is_the_runtime_that_measures(board, tmp_path, capsys):
    """A target file naming a runtime gets that runtime, not the plan's: the board has no
    tflite_runtime, so the record fails naming it instead of quietly using ai_edge_litert."""
    source = Path(get_target(board.name).source)
    text = source.read_text().replace(f'name = "{board.name}"', 'name = "sim-pi4-tflrt"')
    other = source.with_name("sim-pi4-tflrt.toml")
    other.write_text(text.replace("[target]", '[target]\nruntime = "tflite_runtime"', 1))
    try:
        code = main(["deploy", "--target", "sim-pi4-tflrt", "--set", "format=tflite",
                     "--set", "precision=fp32", *QUICK, "-o", str(tmp_path / "a"),
                     "--json", str(tmp_path / "r.json"), "--no-record"])
    finally:
        other.unlink()
    assert code == 1
    result, = json.loads((tmp_path / "r.json").read_text())
    assert result["latency_ms"] is None
    assert "requested runtime tflite_runtime is not installed" in result["error"]
