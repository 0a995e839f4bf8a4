"""Faults between edgecomp and a real board: links cut, frozen and refused, a full disk, a
board that never answers, a damaged cache, a busy lock and changed host keys.

The board is the simulated one (a real sshd); the faults come from `FaultProxy`, placed
between edgecomp and that sshd, at exact moments of the session. Every case checks that
finished results are kept, the failed artifact is a failed record with a sentence, no
traceback reaches the user, the board is left clean and the next run succeeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from edgecomp.cli import main
from edgecomp.remote.local import LocalTransport
from edgecomp.remote.ssh import SshTransport
from edgecomp.results.store import Store
from edgecomp.hardware.targets import get_target, inventory_dir, inventory_known_hosts
from edgecomp.pipeline import agent
from edgecomp.pipeline.agent import MeasureOptions
from tests.remote.faultproxy import FaultProxy

pytestmark = pytest.mark.slow

QUICK = ["--runs", "5", "--seconds", "0.1", "--warmup-runs", "1", "--warmup-seconds", "0"]


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
    return repr(value)


@contextlib.contextmanager
def board_target(board, name: str, *, port: int | None = None, trust: bool = True,
                 **fields):
    """A target file for `board` under another name (another port, other fields)."""
    target = get_target(board.name)
    values = {"name": name, "host": "127.0.0.1", "port": port or board.port,
              "user": target.user, "identity_file": target.identity_file,
              "profile": target.profile, "python": target.python,
              "workdir": target.workdir, **fields}
    path = inventory_dir() / f"{name}.toml"
    path.write_text("[target]\n" + "".join(f"{k} = {_toml_value(v)}\n"
                                           for k, v in values.items()))
    known = inventory_known_hosts()
    saved = known.read_text()
    if trust and values["port"] != board.port:
        key = next(line.split(None, 1)[1] for line in saved.splitlines()
                   if line.startswith(f"[127.0.0.1]:{board.port} "))
        known.write_text(saved + f"[127.0.0.1]:{values['port']} {key}\n")
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)
        known.write_text(saved)


@pytest.fixture()
def proxy(board):
    proxy = FaultProxy(board.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Two real LiteRT models (different bytes, so neither is cached by the other) and
    evaluation data for both."""
    import litert_torch
    import torch

    folder = tmp_path_factory.mktemp("fault-artifacts")
    paths = []
    for index, hidden in enumerate((256, 512)):
        torch.manual_seed(index)
        module = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                                     torch.nn.Linear(hidden, 10)).eval()
        path = folder / f"mlp{hidden}.tflite"
        litert_torch.convert(module, (torch.zeros(1, 64),)).export(str(path))
        paths.append(path)
    rng = np.random.default_rng(0)
    np.savez(folder / "eval.npz", x=rng.standard_normal((64, 64)).astype(np.float32))
    np.savez(folder / "eval-big.npz", x=rng.standard_normal((8192, 64)).astype(np.float32))
    return paths, folder / "eval.npz", folder / "eval-big.npz"


def leftovers(board) -> dict[str, list[str]]:
    work = board.workdir
    return {"temporaries": sorted(p.name for p in work.glob("cache/.tmp-*")),
            "runs": sorted(p.name for p in work.glob("runs/*"))}


def forget(board, *paths: Path) -> None:
    """Remove these files' copies from the board's cache, so that they are uploaded."""
    from edgecomp.hashing import file_sha256

    for path in paths:
        (board.workdir / "cache" / f"{file_sha256(path)}{path.suffix}").unlink(missing_ok=True)


class said:
    """What a command printed, with the terminal's line wrapping undone."""

    def __init__(self, capsys):
        captured = capsys.readouterr()
        self.out, self.err = (" ".join(t.split()) for t in (captured.out, captured.err))


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "unexpected" not in text, text


def results(path: Path) -> list[dict]:
    return json.loads(path.read_text())


@pytest.fixture()
def cut_during_put(monkeypatch):
    """Arm a fault that fires inside the next SFTP upload of a file matching `match`."""
    import paramiko

    original = paramiko.SFTPClient.put
    armed: dict = {}

    def put(self, localpath, remotepath, *args, **kwargs):
        fault = armed.get("fault")
        if fault is not None and armed["match"](Path(localpath)):
            armed.pop("fault")
            fault()
            armed["fired"] = Path(localpath).name
        return original(self, localpath, remotepath, *args, **kwargs)

    monkeypatch.setattr(paramiko.SFTPClient, "put", put)

    def arm(match, fault) -> dict:
        armed.update(match=match, fault=fault)
        return armed

    return arm


def test_link_cut_for_good_while_uploading_keeps_the_finished_result(
        board, proxy, artifacts, cut_during_put, tmp_path, capsys):
    (first, second), _, _ = artifacts

    def board_gone():
        proxy.refuse()
        proxy.cut_after(32 * 1024)  # in the middle of this upload

    forget(board, second)
    before = leftovers(board)
    fired = cut_during_put(lambda path: path.name == second.name, board_gone)
    with board_target(board, "sim-cut", port=proxy.port, connect_timeout=3.0):
        code = main(["bench", str(first), str(second), "--target", "sim-cut", *QUICK,
                     "--json", str(tmp_path / "r.json")])
        text = said(capsys)
        assert fired.get("fired") == second.name
        assert code == 1
        no_traceback(text.err)
        done, failed = results(tmp_path / "r.json")
        assert done["error"] is None and done["latency_ms"]["count"] >= 5
        assert failed["latency_ms"] is None
        assert "lost the connection to sim-cut while uploading" in failed["error"]
        store = Store(Path(os.environ["EDGECOMP_DB"]))
        rows = store.records(target="sim-cut", include_failed=True)
        assert [r.ok for r in rows] == [True, False]
        # The board comes back; the next run removes what the cut left and succeeds.
        proxy.heal()
        assert leftovers(board)["temporaries"], "the cut upload left its temporary file"
        code = main(["bench", str(second), "--target", "sim-cut", *QUICK, "--no-record"])
    assert code == 0
    assert leftovers(board) == before


def test_a_failed_reconnect_prints_one_sentence_and_no_paramiko_log(board, proxy, artifacts,
                                                                    tmp_path):
    """paramiko logged each link fault with its traceback (about 30 `ERROR
    paramiko.transport` lines) when reconnecting failed. A real process: the CLI's own
    logging, the terminal's stderr."""
    from tests.user_cli import cli

    (first, _), _, big = artifacts
    for cached in board.workdir.glob("cache/*.npz"):  # the evaluation set goes up again:
        cached.unlink()  # 2 MB, cut in the middle, and the board refuses from then on
    before = leftovers(board)
    proxy.cut_after(1 << 20, then_refuse=True)
    with board_target(board, "sim-vanish", port=proxy.port, connect_timeout=3.0):
        result = cli(tmp_path, "bench", str(first), "--target", "sim-vanish", "--eval",
                     str(big), *QUICK, "--no-record", timeout=300)
        assert proxy.refusing and proxy.connections == 1, result.stderr
        assert result.returncode == 1, result.stderr
        assert "reconnecting failed" in result.stderr + result.stdout
        for noise in ("paramiko", "Traceback", "ERROR", "unexpected"):
            assert noise not in result.stderr, result.stderr
        proxy.heal()  # the board is back: the next run removes what the cut left
        assert main(["bench", str(first), "--target", "sim-vanish", *QUICK,
                     "--no-record"]) == 0
    assert leftovers(board) == before


def test_link_cut_once_while_uploading_the_evaluation_set_reconnects(
        board, proxy, artifacts, cut_during_put, tmp_path, capsys):
    (first, second), _, big = artifacts
    for cached in board.workdir.glob("cache/*.npz"):  # the evaluation set goes up again
        cached.unlink()
    runs_before = leftovers(board)["runs"]
    fired = cut_during_put(lambda path: path.suffix == ".npz" and path.stat().st_size > 1e6,
                           lambda: proxy.cut_after(256 * 1024))
    with board_target(board, "sim-blip", port=proxy.port):
        code = main(["bench", str(first), str(second), "--target", "sim-blip", "--eval",
                     str(big), "--reference", str(first), *QUICK, "--no-record",
                     "--json", str(tmp_path / "r.json")])
    text = said(capsys)
    assert fired.get("fired") and proxy.connections >= 2  # cut, then reconnected
    assert code == 0, text.err
    no_traceback(text.err)
    for result in results(tmp_path / "r.json"):
        assert result["error"] is None and result["agreement"]["cosine"] is not None
    # The reconnected run removed the temporary the cut left, and its own directory.
    assert leftovers(board) == {"temporaries": [], "runs": runs_before}


def test_board_gone_mid_deploy_keeps_every_finished_result(board, proxy, monkeypatch,
                                                           tmp_path, capsys):
    """The demo's four artifacts: the board disappears after the first is measured."""
    original = SshTransport.run_agent
    calls = []

    def run_agent(self, args, *, what, **options):
        if args[0] == "measure":
            calls.append(args[1])
            if len(calls) == 2:  # the first artifact's record is finished
                proxy.refuse()
                proxy.cut()
        return original(self, args, what=what, **options)

    monkeypatch.setattr(SshTransport, "run_agent", run_agent)
    before = leftovers(board)
    with board_target(board, "sim-gone", port=proxy.port, connect_timeout=3.0):
        code = main(["deploy", "--target", "sim-gone", *QUICK, "-o", str(tmp_path / "a"),
                     "--json", str(tmp_path / "r.json")])
        text = said(capsys)
        assert code == 1
        no_traceback(text.err)
        records = results(tmp_path / "r.json")
        assert len(records) == 4
        assert records[0]["error"] is None and records[0]["accuracy"] > 90
        assert "lost the connection to sim-gone" in records[1]["error"]
        for later in records[2:]:  # not tried again: the link was already lost
            assert later["latency_ms"] is None and "was not tried" in later["error"]
        store = Store(Path(os.environ["EDGECOMP_DB"]))
        assert [r.ok for r in store.records(target="sim-gone", include_failed=True)] == \
            [True, False, False, False]
        proxy.heal()
        monkeypatch.setattr(SshTransport, "run_agent", original)
        code = main(["deploy", "--target", "sim-gone", *QUICK, "-o", str(tmp_path / "b"),
                     "--no-record", "--no-search"])
    assert code == 0
    assert leftovers(board) == before  # the lost run's directory too


def test_frozen_link_with_default_settings_fails_within_a_minute(
        board, proxy, artifacts, monkeypatch, tmp_path, capsys):
    (first, second), _, _ = artifacts
    original = SshTransport.run_agent
    calls = []

    def run_agent(self, args, *, what, **options):
        if args[0] == "measure":
            calls.append(args[1])
            if len(calls) == 2:
                proxy.freeze()
        return original(self, args, what=what, **options)

    monkeypatch.setattr(SshTransport, "run_agent", run_agent)
    before = leftovers(board)
    with board_target(board, "sim-frozen", port=proxy.port):  # default timeouts
        start = time.monotonic()
        code = main(["bench", str(first), str(second), "--target", "sim-frozen", *QUICK,
                     "--no-record", "--json", str(tmp_path / "r.json")])
        elapsed = time.monotonic() - start
        text = said(capsys)
        assert code == 1
        no_traceback(text.err)
        assert elapsed < 60, elapsed
        done, failed = results(tmp_path / "r.json")
        assert done["error"] is None
        assert "sim-frozen" in failed["error"] and failed["latency_ms"] is None
        proxy.cut()
        proxy.heal()
        monkeypatch.setattr(SshTransport, "run_agent", original)
        assert main(["bench", str(second), "--target", "sim-frozen", *QUICK,
                     "--no-record"]) == 0
    assert leftovers(board) == before


def test_preflight_that_never_answers_is_a_sentence_in_seconds(board, tmp_path, capsys):
    stuck = tmp_path / "stuck-python"
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck.chmod(0o755)
    with board_target(board, "sim-stuck", python=str(stuck), connect_timeout=2.0):
        start = time.monotonic()
        code = main(["targets", "check", "sim-stuck"])
        elapsed = time.monotonic() - start
    text = said(capsys)
    assert code == 1
    no_traceback(text.err)
    assert "did not prepare" in text.err and "within 6 s" in text.err
    assert elapsed < 20, elapsed


def test_damaged_cached_artifact_is_uploaded_again_not_measured(board, artifacts, capsys):
    (first, _), evaluation, _ = artifacts
    target = get_target(board.name)
    with SshTransport(target) as ssh:
        remote = Path(ssh.push(first))
    good = remote.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2:len(damaged) // 2 + 64] = bytes(64)  # same size, other bytes
    inputs = {"in0": np.load(evaluation)["x"][:8, None]}  # 8 samples of shape (1, 64)
    with LocalTransport() as here:
        expected = agent.outputs(here, first, inputs, MeasureOptions())[0][0]
    for replacement in (bytes(damaged), os.urandom(len(good))):
        remote.write_bytes(replacement)
        with SshTransport(target) as ssh:
            outputs = agent.outputs(ssh, first, inputs, MeasureOptions())[0]
            assert ssh.files_sent >= 1  # the artifact went up again
        assert remote.read_bytes() == good
        np.testing.assert_allclose(outputs[0], expected, rtol=1e-5, atol=1e-6)


def test_disk_full_during_the_evaluation_upload(board, artifacts, cut_during_put, tmp_path,
                                                capsys):
    """A small tmpfs as the board's disk, filled by someone else during the upload."""
    (first, _), _, big = artifacts
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root: {mounted.stderr.strip()}")
    try:
        filler = disk / "someone-elses-file"

        def fill_the_disk():
            free = shutil.disk_usage(disk).free
            filler.write_bytes(b"\0" * max(0, free - 512 * 1024))

        fired = cut_during_put(lambda path: path.suffix == ".npz", fill_the_disk)
        with board_target(board, "sim-full", workdir=str(disk / "work")):
            code = main(["bench", str(first), "--target", "sim-full", "--eval", str(big),
                         *QUICK, "--no-record", "--json", str(tmp_path / "r.json")])
            text = said(capsys)
            assert fired.get("fired")
            assert code == 1
            no_traceback(text.err)
            failed, = results(tmp_path / "r.json")
            assert "disk may be full" in failed["error"]
            assert not list(disk.glob("work/cache/.tmp-*"))  # removed at once
            filler.unlink()
            code = main(["bench", str(first), "--target", "sim-full", "--eval", str(big),
                         *QUICK, "--no-record"])
        assert code == 0, capsys.readouterr().err
        assert not list(disk.glob("work/cache/.tmp-*"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_preflight_removes_only_what_edgecomp_made(board, tmp_path, capsys):
    work = tmp_path / "existing-folder"
    precious = work / "runs" / "experiment-2024"
    precious.mkdir(parents=True)
    (precious / "notes.txt").write_text("mine")
    lookalike = work / "runs" / "20240101-000000-deadbeef"  # edgecomp's naming, no marker
    lookalike.mkdir()
    ours = work / "runs" / "20240101-000000-0badf00d"
    ours.mkdir()
    (ours / ".edgecomp-run").write_text("")
    (work / "cache").mkdir()
    (work / "cache" / ".tmp-backup").write_text("not an upload of edgecomp's")
    abandoned = work / "cache" / ".tmp-0123456789abcdef-01234567"  # no process has it open
    abandoned.write_bytes(b"half an upload")
    fresh = work / "cache" / ".tmp-0123456789abcdef-89abcdef"  # just written: maybe in use
    fresh.write_bytes(b"an upload about to be committed")
    old = time.time() - 7 * 3600
    for path in (precious, lookalike, ours, work / "cache" / ".tmp-backup"):
        os.utime(path, (old, old))
    os.utime(abandoned, (time.time() - 120, time.time() - 120))
    with board_target(board, "sim-shared", workdir=str(work)):
        assert main(["targets", "check", "sim-shared"]) == 0
    assert (precious / "notes.txt").read_text() == "mine"
    assert lookalike.is_dir() and (work / "cache" / ".tmp-backup").is_file()
    assert not ours.exists()  # a run directory of edgecomp's own, abandoned 7 h ago
    assert not abandoned.exists() and fresh.is_file()
    assert sorted(p.name for p in (work / "runs").iterdir()) == [
        "20240101-000000-deadbeef", "experiment-2024"]


def test_lock_timeout_comes_from_the_target_file(board, artifacts, tmp_path, capsys):
    (first, _), _, _ = artifacts
    runtime_dir = tmp_path / "xdg"
    lock = runtime_dir / "edgecomp" / "board.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # a measurement that never ends
        with board_target(board, "sim-busy", lock_timeout=2.0,
                          env={"XDG_RUNTIME_DIR": str(runtime_dir)}):
            start = time.monotonic()
            code = main(["bench", str(first), "--target", "sim-busy", *QUICK, "--no-record",
                         "--json", str(tmp_path / "r.json")])
            elapsed = time.monotonic() - start
    text = said(capsys)
    assert code == 1 and elapsed < 30, elapsed
    no_traceback(text.err)
    failed, = results(tmp_path / "r.json")
    assert "the board is busy" in failed["error"] and "over 2 s" in failed["error"]
    assert "lock_timeout in the target's file" in failed["error"]
    assert "None" not in failed["error"]


def test_trust_with_stdin_closed_is_a_sentence(board, proxy, monkeypatch, capsys):
    with board_target(board, "sim-new", port=proxy.port, trust=False):
        monkeypatch.setattr("sys.stdin", None)
        code = main(["targets", "trust", "sim-new"])
    text = said(capsys)
    assert code == 1
    no_traceback(text.err)
    assert "--yes" in text.err


def test_host_key_of_another_type_is_refused(board, board_factory, tmp_path, capsys):
    """ed25519 is known for the address; the server now offers ECDSA."""
    from edgecomp.errors import DeviceError

    other = board_factory("sim-ecdsa", "--host-key-type", "ecdsa", "--no-trust")
    known = inventory_known_hosts()
    saved = known.read_text()
    ed25519 = next(line.split(None, 1)[1] for line in saved.splitlines()
                   if line.startswith(f"[127.0.0.1]:{board.port} "))
    known.write_text(saved + f"[127.0.0.1]:{other.port} {ed25519}\n")
    try:
        code = main(["targets", "trust", "sim-ecdsa", "--yes"])
        text = said(capsys)
        assert code == 1
        no_traceback(text.err)
        assert "already holds a different key" in text.err
        assert known.read_text() == saved + f"[127.0.0.1]:{other.port} {ed25519}\n"
        with pytest.raises(DeviceError, match="has CHANGED"):
            SshTransport(get_target("sim-ecdsa"))
    finally:
        known.write_text(saved)


def test_a_slow_link_is_not_a_dead_one(board, proxy, artifacts, tmp_path, capsys):
    """About 1 MB/s: uploads take seconds, nothing is cut or retried."""
    (first, _), _, big = artifacts
    proxy.slow(1e6)
    with board_target(board, "sim-slow", port=proxy.port):
        code = main(["bench", str(first), "--target", "sim-slow", "--eval", str(big), *QUICK,
                     "--no-record"])
    assert code == 0, capsys.readouterr().err
    assert proxy.connections == 1
    assert leftovers(board)["temporaries"] == []


def test_measure_options_carry_the_target_lock_timeout(board):
    from edgecomp.hardware.board import resolve_board
    from edgecomp.pipeline.apply import apply_plan
    from edgecomp.pipeline.request import DeployRequest

    with board_target(board, "sim-lock-opt", lock_timeout=42.0):
        settings = apply_plan(DeployRequest(target="sim-lock-opt"), None,
                              resolve_board("sim-lock-opt"))
    args = settings.measure.agent_args()
    assert args[args.index("--lock-timeout") + 1] == "42.0"


def test_a_real_model_cut_mid_upload_is_measured_after_reconnecting(
        board, proxy, cut_during_put, tmp_path, capsys):
    """mediapipe's face detector as shipped: the link drops halfway through its upload, the
    run reconnects, and the board's outputs still match this machine's exactly."""
    from examples.zoo import models as zoo

    model = zoo.mediapipe_tflite("face_detection_short_range")
    forget(board, model)
    frames = np.random.default_rng(0).random((3, 128, 128, 3), dtype=np.float32)
    np.savez(tmp_path / "frames.npz", x=frames)
    fired = cut_during_put(lambda path: path == model,
                           lambda: proxy.cut_after(model.stat().st_size // 2))
    with board_target(board, "sim-real", port=proxy.port):
        code = main(["bench", str(model), "--target", "sim-real", "--eval",
                     str(tmp_path / "frames.npz"), "--reference", str(model), *QUICK,
                     "--no-record", "--json", str(tmp_path / "r.json")])
    text = said(capsys)
    assert fired.get("fired") == model.name and proxy.connections >= 2
    assert code == 0, text.err
    no_traceback(text.err)
    result, = results(tmp_path / "r.json")
    assert result["error"] is None and result["agreement"]["cosine"] == pytest.approx(1.0)
    cached = board.workdir / "cache" / f"{result['artifact_sha256']}{model.suffix}"
    assert cached.read_bytes() == model.read_bytes()
    assert leftovers(board)["temporaries"] == []
