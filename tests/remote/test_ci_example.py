"""examples/ci end to end against the simulated board: the GitHub Actions workflow's steps
run in order as a runner would run them (push to main, then pull requests), and the plain
script's outputs are what the workflow uploads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"

# The only expressions the workflow may use: what this runner can evaluate exactly.
EXPRESSION = re.compile(r"\$\{\{\s*(env|secrets|github)\.([A-Za-z_]+)\s*\}\}")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


class Runner:
    """Runs one job of a workflow the way a self-hosted GitHub runner does: job env, the
    steps in order under `bash -e`, `if: always()` steps after a failure, GITHUB_PATH,
    GITHUB_STEP_SUMMARY; `uses:` steps are checked, not run (checkout is the folder)."""

    def __init__(self, workflow: dict, *, workdir: Path, secrets: dict[str, str],
                 github: dict[str, str], path: str):
        self.job = workflow["jobs"]["hil"]
        self.workdir = workdir
        self.secrets, self.github = secrets, github
        self.summary = workdir.parent / f"summary-{github['run_id']}.md"
        self.github_path = workdir.parent / f"path-{github['run_id']}"
        self.path = path
        self.uploaded: list[Path] = []
        self.junit: list[Path] = []
        self.log = ""  # what the run steps printed, for failure messages

    def expand(self, text: str, env: dict[str, str]) -> str:
        leftover = re.sub(EXPRESSION, "", text)
        assert "${{" not in leftover, f"an expression this runner cannot evaluate: {text}"
        scopes = {"env": env, "secrets": self.secrets, "github": self.github}
        return EXPRESSION.sub(lambda m: scopes[m.group(1)].get(m.group(2), ""), text)

    def run(self) -> dict[str, int]:
        env = {**os.environ, "GITHUB_STEP_SUMMARY": str(self.summary),
               "GITHUB_PATH": str(self.github_path), "CI": "true", "GITHUB_ACTIONS": "true",
               **{f"GITHUB_{k.upper()}": v for k, v in self.github.items()}}
        env.update({k: self.expand(str(v), env) for k, v in self.job["env"].items()})
        self.github_path.write_text("")
        failed, outcome = False, {}
        for step in self.job["steps"]:
            name = step.get("id") or step.get("name") or step.get("uses")
            condition = step.get("if")
            assert condition in (None, "always()"), condition
            if failed and condition != "always()":
                outcome[name] = None
                continue
            if "uses" in step:
                self.use(step, env)
                continue
            if step.get("id") == "install":
                # The runner's environment is what ./tools/setup made (CI ran it before
                # the tests); the step's second half, GITHUB_PATH, is what matters here.
                assert step["run"].startswith("./tools/setup && ")
                self.github_path.write_text(self.path + "\n")
                outcome[name] = 0
                continue
            extra = [line for line in self.github_path.read_text().splitlines() if line]
            step_env = {**env, "PATH": os.pathsep.join([*extra, env["PATH"]])}
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                                   self.expand(step["run"], env)], cwd=self.workdir,
                                  env=step_env, capture_output=True, text=True, timeout=900)
            outcome[name] = done.returncode
            self.log += done.stdout + done.stderr
            failed = failed or done.returncode != 0
        return outcome

    def use(self, step: dict, env: dict[str, str]) -> None:
        action = step["uses"].split("@")[0]
        inputs = {k: self.expand(str(v), env) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            assert (self.workdir / ".git").exists()
        elif action == "actions/upload-artifact":
            self.uploaded = [self.workdir / line.strip()
                             for line in inputs["path"].splitlines() if line.strip()]
        elif action == "mikepenz/action-junit-report":
            self.junit = [self.workdir / inputs["report_paths"]]
        else:
            raise AssertionError(f"an action this runner does not know: {action}")


@pytest.fixture
def project(tmp_path):
    """A user's repository with the example copied in, on branch main."""
    folder = tmp_path / "project"
    (folder / "examples" / "ci").mkdir(parents=True)
    for name in ("hil.sh", "gate.toml"):
        shutil.copy2(CI / name, folder / "examples" / "ci" / name)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", ".")
    git(folder, "-c", "user.name=ci", "-c", "user.email=ci@example.org", "commit", "-qm", "ci")
    return folder


def workflow_for(board_name: str, *, model: str = "", data: str = "") -> dict:
    """The example workflow as a user adapts it: the board, the model and its data, one
    format and thread (steadier timing on a shared 2-core machine), fewer timed runs."""
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    env = workflow["jobs"]["hil"]["env"]
    env.update(EDGECOMP_TARGET=board_name, EDGECOMP_MODEL=model,
               EDGECOMP_DEPLOY_ARGS=f"--format tflite --threads 1 --runs 30 --seconds 0.5 {data}")
    return workflow


def clean_ci_variables(monkeypatch) -> None:
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                 "BUILDKITE_BRANCH", "BRANCH_NAME", "GIT_BRANCH", "GITHUB_RUN_ID",
                 "CI_PIPELINE_ID", "BUILD_NUMBER", "EDGECOMP_UNJUDGED"):
        monkeypatch.delenv(name, raising=False)


def test_the_workflow_triggers_and_runs_on_a_board_labelled_runner():
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on`
    assert set(triggers) == {"push", "pull_request"}
    job = workflow["jobs"]["hil"]
    assert "self-hosted" in job["runs-on"] and any(
        label.startswith("board-") for label in job["runs-on"])
    assert subprocess.run(["bash", "-n", str(CI / "hil.sh")]).returncode == 0


@pytest.mark.slow
def test_the_ci_example_runs_end_to_end_against_the_simulated_board(
        board, project, results_db, demo_source, digits_npz, monkeypatch):
    clean_ci_variables(monkeypatch)
    bin_dir = str(Path(os.sys.executable).parent)
    secrets = {"EDGECOMP_DB": results_db}

    # 1. A push to main: measured, nothing to compare with yet, so it passes and becomes
    #    the baseline.
    push = Runner(workflow_for(board.name), workdir=project, secrets=secrets, path=bin_dir,
                  github={"run_id": "101", "event_name": "push", "ref_name": "main",
                          "head_ref": ""})
    outcome = push.run()
    assert outcome["hil"] == 0, push.log
    assert all(path.is_file() for path in push.uploaded), push.uploaded
    assert {p.name for p in push.uploaded} == {"report.html", "junit.xml", "gate.json",
                                               "results.json"}
    assert "could not judge" in push.log or "no baseline" in push.log.lower()

    # 2. A pull request that changes nothing: gated against main, and passes.
    git(project, "checkout", "-q", "-b", "feature")
    git(project, "checkout", "-q", "--detach")  # as actions/checkout leaves a PR's merge
    #    On a shared machine a build may come back "could not judge" (another process made
    #    the run unstable): never a regression, and the re-run a user would start passes.
    #    When it was main's own run that was too unstable, main is measured again first, as
    #    its next push would.
    main_runs, pr_runs = ["101"], []
    for attempt in ("102", "112", "122"):
        pr_runs.append(attempt)
        same = Runner(workflow_for(board.name), workdir=project, secrets=secrets,
                      path=bin_dir, github={"run_id": attempt, "event_name": "pull_request",
                                            "ref_name": "7/merge", "head_ref": "feature"})
        outcome = same.run()
        if outcome["hil"] == 0:
            break
        assert outcome["hil"] == 2, same.log  # could not judge, never "slower"
        verdicts = {check["verdict"] for check in
                    json.loads((project / "edgecomp-ci" / "gate.json").read_text())["checks"]}
        assert verdicts & {"unstable", "inconclusive"}, verdicts
        if any("too unstable:" in line and "baseline:" in line
               for line in same.log.splitlines()):
            main_runs.append(f"{attempt}0")
            again = Runner(workflow_for(board.name), workdir=project, secrets=secrets,
                           path=bin_dir, github={"run_id": main_runs[-1], "event_name": "push",
                                                 "ref_name": "main", "head_ref": ""})
            assert again.run()["hil"] == 0, again.log
    assert outcome["hil"] == 0, same.log
    cases = [case for suite in JUnitXml.fromfile(str(same.junit[0])) for case in suite]
    assert cases and not any(case.result and case.result[0]._tag == "failure"
                             for case in cases)
    assert "demo-cnn" in same.summary.read_text()  # the gate's table is the job summary
    report = (project / "edgecomp-ci" / "report.html").read_text()
    assert f"ci-{attempt}" in report and "ci-101" in report  # this build beside the baseline

    # 3. A pull request whose model has twice the channels: a regression, the build fails,
    #    and the report and JUnit are still kept.
    #    It carries the demo's name (`--name`), as a new release of a model does, and the
    #    demo's own data, which a factory model must be given.
    calib, val = digits_npz
    slower = Runner(workflow_for(board.name, model="tests.wide_demo:demo_cnn",
                                 data=f"--name demo-cnn --calib {calib} --eval {val}"),
                    workdir=project, secrets=secrets, path=bin_dir,
                    github={"run_id": "103", "event_name": "pull_request",
                            "ref_name": "8/merge", "head_ref": "feature"})
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the slower model's module
    outcome = slower.run()
    assert outcome["hil"] == 1, slower.log
    assert outcome["Gate summary"] == 0  # `if: always()` steps still ran
    assert all(path.is_file() for path in slower.uploaded)
    assert "edgecomp deploy failed" not in slower.log, slower.log
    failures = [case for suite in JUnitXml.fromfile(str(slower.junit[0])) for case in suite
                if case.result and case.result[0]._tag == "failure"]
    assert any("p50" in case.name or "latency" in case.name for case in failures), \
        [(case.classname, case.name, case.result[0].message) for case in failures]

    # Every build is in the store under its tag and branch, and compare reads them too.
    from edgecomp.cli import main
    from edgecomp.results.store import Store

    with Store() as store:
        branches = {run.tag: run.git_branch for run in store.runs()}
    assert branches == {**{f"ci-{run}": "main" for run in main_runs},
                        **{f"ci-{run}": "feature" for run in [*pr_runs, "103"]}}
    assert main(["compare", "--baseline", "ci-101", "--tag", f"ci-{attempt}"]) == 0
