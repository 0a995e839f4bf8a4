"""Bad input ends in one clear sentence, a non-zero exit, and nothing written."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from edgecomp.cli import main
from tests.hostile import Payload

ROOT = Path(__file__).resolve().parent.parent

FACTORY = textwrap.dedent("""
    import torch
    from torch import nn

    def small_cnn():
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 8 * 8, 10))
""")


@pytest.fixture()
def project(tmp_path, monkeypatch, digits_npz):
    """A user's project folder with a model factory, weights and data."""
    (tmp_path / "mymodels.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(tmp_path))
    namespace: dict = {}
    exec(FACTORY, namespace)
    torch.save(namespace["small_cnn"]().state_dict(), tmp_path / "net.pt")
    db = tmp_path / "results.db"
    monkeypatch.setenv("EDGECOMP_DB", str(db))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("mymodels", None)


def rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def assert_clean_failure(code, text, project, *, match: str):
    assert code != 0
    assert "Traceback" not in text
    assert match in text, text
    out = project / "out"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
    assert rows(project / "results.db") == 0


def test_truncated_pt2_model(project, capsys, digits_npz):
    from edgecomp.model.demo import DemoCNN

    program = torch.export.export(DemoCNN().eval(), (torch.zeros(1, 1, 8, 8),))
    torch.export.save(program, project / "model.pt2")
    data = (project / "model.pt2").read_bytes()
    (project / "model.pt2").write_bytes(data[: len(data) // 2])
    code, text = run_cli(capsys, "export", "model.pt2", "--calib", str(digits_npz[0]),
                         "--precision", "int8", "-o", "out")
    assert_clean_failure(code, text, project, match="not a readable torch.export program")


def test_truncated_onnx_model(project, capsys, digits_npz):
    (project / "model.onnx").write_bytes(b"\x08\x07\x12\x04torch\x1a")
    code, text = run_cli(capsys, "export", "model.onnx", "--format", "onnx", "-o", "out")
    assert_clean_failure(code, text, project, match="not a valid ONNX model")


def test_malicious_pickle_weights_are_refused_without_running_them(project, capsys,
                                                                   digits_npz):
    marker = project / "pwned"
    torch.save({"weight": Payload(marker)}, project / "evil.pt")
    code, text = run_cli(capsys, "export", "mymodels:small_cnn", "--weights", "evil.pt",
                         "--calib", str(digits_npz[0]), "-o", "out")
    assert_clean_failure(code, text, project, match="would run code")
    assert not marker.exists()


def test_shape_mismatch_between_model_and_data(project, capsys):
    np.savez(project / "wrong.npz", x=np.zeros((20, 3, 16, 16), np.float32))
    code, text = run_cli(capsys, "export", "mymodels:small_cnn", "--weights", "net.pt",
                         "--input-shape", "1,1,8,8", "--calib", "wrong.npz",
                         "--precision", "int8", "-o", "out")
    assert_clean_failure(code, text, project, match="samples of shape [3, 16, 16]")


def test_missing_calibration_data(project, capsys, digits_npz):
    code, text = run_cli(capsys, "export", "mymodels:small_cnn", "--weights", "net.pt",
                         "--input-shape", "1,1,8,8", "--precision", "int8", "-o", "out")
    assert_clean_failure(code, text, project, match="needs calibration data")


def test_unknown_target(project, capsys, digits_npz):
    code, text = run_cli(capsys, "deploy", "mymodels:small_cnn", "--weights", "net.pt",
                         "--calib", str(digits_npz[0]), "--target", "no-such-board",
                         "-o", "out")
    assert_clean_failure(code, text, project, match="no-such-board")


def test_cli_exit_code_and_no_traceback_in_a_real_process(project, digits_npz):
    """The installed entry point, not just main(): exit status 1 and one error line."""
    result = subprocess.run(
        [sys.executable, "-m", "edgecomp.cli", "export", "mymodels:small_cnn", "--weights",
         "missing.pt", "-o", "out"], cwd=project, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "missing.pt does not exist" in result.stderr


@pytest.mark.parametrize("poison, count", [("inf", 3), ("nan", 64 * 200)])
def test_non_finite_calibration_data_is_refused(project, capsys, digits_npz, poison, count):
    x = np.load(digits_npz[0])["x"].copy()
    if poison == "inf":
        x[0, 0, 0, :3] = np.inf
    else:
        x[:] = np.nan
    np.savez(project / "bad.npz", x=x)
    code, text = run_cli(capsys, "export", "mymodels:small_cnn", "--weights", "net.pt",
                         "--calib", "bad.npz", "--format", "onnx", "--precision", "int8",
                         "-o", "out")
    assert code == 1
    assert_clean_failure(code, text, project,
                         match=f"bad.npz: input 'x' holds {count} non-finite values")


def test_non_finite_evaluation_data_is_refused(project, capsys, digits_npz):
    x = np.load(digits_npz[1])["x"].copy()
    x[1, 0, 2, 2] = -np.inf
    np.savez(project / "bad-eval.npz", x=x, y=np.load(digits_npz[1])["y"])
    code, text = run_cli(capsys, "deploy", "mymodels:small_cnn", "--weights", "net.pt",
                         "--calib", str(digits_npz[0]), "--eval", "bad-eval.npz",
                         "--target", "local", "-o", "out")
    assert code == 1
    assert_clean_failure(code, text, project,
                         match="bad-eval.npz: input 'x' holds 1 non-finite values")


def test_an_unexpected_error_is_one_sentence_without_debug(monkeypatch, capsys):
    """A bug edgecomp has no sentence for: one line and exit 70; --debug shows the traceback."""
    from edgecomp.commands import targets_cmd

    def broken(args):
        raise RuntimeError("something\nnobody planned for")

    monkeypatch.setattr(targets_cmd, "run_list", broken)
    assert main(["targets", "list"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert "unexpected RuntimeError (something nobody planned for)" in " ".join(err.split())
    assert "--debug" in err
    with pytest.raises(RuntimeError):
        main(["--debug", "targets", "list"])


def test_weights_naming_a_folder_say_it_is_a_folder(project, capsys):
    """A folder given to --weights was reported as a file that does not exist."""
    (project / "checkpoints").mkdir()
    code, text = run_cli(capsys, "export", "mymodels:small_cnn", "--weights", "checkpoints",
                         "--input-shape", "1,1,8,8", "-o", "out")
    assert_clean_failure(code, text, project,
                         match="weights file checkpoints is a folder, not a regular file")
    assert "does not exist" not in text


def _unwritable_outputs(project: Path) -> list[tuple[list[str], str]]:
    """Outputs no command can write, with what the sentence must say about each."""
    (project / "taken.txt").write_text("a file where a folder is wanted")
    (project / "results").mkdir()
    cases = [(["-o", "taken.txt"], "-o/--out taken.txt is a file, not a folder"),
             (["-o", "taken.txt/out"], "-o/--out taken.txt/out cannot be written: taken.txt "
                                       "is a file, not a folder"),
             (["--json", "results"], "--json results is a folder; name the file to write"),
             (["--json", "taken.txt/more/r.json"], "--json taken.txt/more/r.json cannot be "
                                                   "written: taken.txt is a file")]
    if sys.platform == "linux" and Path("/sys/kernel").is_dir():
        # sysfs takes no new files, not even from root: a folder no user can write in
        cases.append((["--json", "/sys/r.json"], "--json /sys/r.json cannot be written: "
                                                 "/sys does not take new files"))
    return cases


@pytest.mark.parametrize("command", ["deploy", "bench"])
def test_an_unwritable_output_is_refused_before_any_work(project, capsys, monkeypatch,
                                                         command):
    """Unwritable -o or --json was exit 70 "report it", for deploy after the whole run."""
    import edgecomp.pipeline.bench
    import edgecomp.pipeline.deploy

    def work_started(*args, **kwargs):
        raise AssertionError("the command started working before checking its outputs")

    monkeypatch.setattr(edgecomp.pipeline.deploy, "deploy", work_started)
    monkeypatch.setattr(edgecomp.pipeline.bench, "bench", work_started)
    first = ["deploy", "mymodels:small_cnn", "--weights", "net.pt", "--input-shape",
             "1,1,8,8", "--target", "local"] if command == "deploy" else \
        ["bench", "net.tflite", "--target", "local"]
    for flags, sentence in _unwritable_outputs(project):
        if command == "bench" and flags[0] == "-o":
            continue  # bench writes no folder
        code, text = run_cli(capsys, *first, *flags)
        assert code == 1, text
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), text
        assert sentence in " ".join(text.split()), text
    assert not (project / "more").exists() and not (project / "taken.txt").is_dir()


def test_every_output_flag_is_checked_before_its_command_runs(tmp_path, capsys):
    """export, compress and report (-o), compare, plan and gate (--json, --junit,
    --summary, --report)."""
    (tmp_path / "taken.txt").write_text("")
    bad_file, bad_folder = str(tmp_path / "taken.txt" / "x"), str(tmp_path / "taken.txt")
    for argv in (["export", "mymodels:small_cnn", "-o", bad_folder],
                 ["compress", "--pass", "fold", "-o", bad_folder],
                 ["compare", "--json", bad_file],
                 ["plan", "--target", "local", "--json", bad_file],
                 ["gate", "--baseline", "tag:main", "--junit", bad_file],
                 ["gate", "--baseline", "tag:main", "--summary", bad_file],
                 ["gate", "--baseline", "tag:main", "--report", bad_file],
                 ["report", "-o", bad_file]):
        code, text = run_cli(capsys, *argv)
        assert code == 1, (argv, text)
        assert "is a file, not a folder" in " ".join(text.split()), (argv, text)
