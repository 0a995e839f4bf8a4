"""`edgecomp ci init`: the CI files a user's repository gets, all of them or none.
(tests/remote/test_ci_example.py runs what it writes against the simulated board.)"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from edgecomp import __version__
from edgecomp.cli import main
from edgecomp.commands.ci_cmd import GATE_CONFIG, SCRIPT, WORKFLOW, ci_files

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "edgecomp" / "shipped" / "ci"


def one_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_init_writes_a_workflow_for_the_board_that_runs_the_repository_s_own_files(
        tmp_path, capsys):
    assert main(["ci", "init", "--target", "pi4-lab-7", "--dir", str(tmp_path)]) == 0
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == \
        sorted([WORKFLOW, SCRIPT, GATE_CONFIG])
    assert (tmp_path / SCRIPT).read_bytes() == (SHIPPED / "hil.sh").read_bytes()
    assert os.access(tmp_path / SCRIPT, os.X_OK)
    assert (tmp_path / GATE_CONFIG).read_bytes() == (SHIPPED / "gate.toml").read_bytes()

    text = (tmp_path / WORKFLOW).read_text()
    assert "<<" not in text and "examples/" not in text  # no template or edgecomp tree left
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {"contents": "read", "checks": "write"}
    job = workflow["jobs"]["hil"]
    assert "permissions" not in job  # the workflow's, least privilege, hold for the job
    assert job["runs-on"] == ["self-hosted", "linux", "board-pi4-lab-7"]
    assert workflow["concurrency"]["group"] == "board-pi4-lab-7"
    assert job["env"]["EDGECOMP_TARGET"] == "pi4-lab-7"
    assert job["env"]["EDGECOMP_GATE_ARGS"] == f"--config {GATE_CONFIG}"
    steps = {step.get("id"): step for step in job["steps"]}
    install = steps["install"]["run"]
    assert '"torch==2.13.0"' in install and f'"edgecomp=={__version__}"' in install
    assert "pip install" in install and "$GITHUB_PATH" in install
    assert steps["hil"]["run"] == str(SCRIPT)
    assert f"wrote {tmp_path / WORKFLOW}" in capsys.readouterr().out


def test_the_example_workflow_is_what_init_writes_and_its_scripts_are_the_shipped_ones():
    example = ROOT / "examples" / "ci"
    assert (example / "github-actions.yml").read_text() == ci_files("pi4-lab-1")[WORKFLOW][0]
    for name in ("hil.sh", "gate.toml"):
        assert (example / name).samefile(SHIPPED / name)


def test_init_keeps_existing_files_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "ci").mkdir()
    (tmp_path / GATE_CONFIG).write_text("[latency]\nmax_increase = 0.1\n")
    assert main(["ci", "init", "--target", "sim-pi4", "--dir", str(tmp_path)]) == 1
    assert f"{tmp_path / GATE_CONFIG} already exists; nothing was written" in one_error(capsys)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ci", "gate.toml"]
    assert (tmp_path / GATE_CONFIG).read_text() == "[latency]\nmax_increase = 0.1\n"

    assert main(["ci", "init", "--target", "sim-pi4", "--dir", str(tmp_path), "--force"]) == 0
    assert (tmp_path / GATE_CONFIG).read_bytes() == (SHIPPED / "gate.toml").read_bytes()
    assert (tmp_path / WORKFLOW).is_file()


def test_a_write_that_fails_leaves_no_file_changed(tmp_path, capsys):
    (tmp_path / GATE_CONFIG).mkdir(parents=True)  # the last file cannot be written
    (tmp_path / SCRIPT).write_text("# the user's own\n")
    assert main(["ci", "init", "--target", "sim-pi4", "--dir", str(tmp_path), "--force"]) == 1
    assert "is a folder" in one_error(capsys)
    assert (tmp_path / SCRIPT).read_text() == "# the user's own\n"
    assert not (tmp_path / WORKFLOW).exists()
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["hil.sh"]  # no temp left


def test_init_refuses_a_name_that_is_no_target_name(tmp_path, capsys):
    assert main(["ci", "init", "--target", "pi4; rm -rf ~", "--dir", str(tmp_path)]) == 1
    assert "is not a target name" in one_error(capsys)
    assert not any(tmp_path.iterdir())
