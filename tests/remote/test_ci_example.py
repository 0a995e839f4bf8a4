"""CI in a user's own repository, end to end against the simulated board: edgecomp built as
a wheel and installed into a virtual environment of its own, `edgecomp ci init` run in a
scratch repository, and the workflow it writes run step by step as a runner would run it
(push to main, then pull requests; the last through the GitHub Action in action.yml). The
plain script's outputs are what the workflow uploads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
ACTION = ROOT / "action.yml"
# The scratch repository's own slower release of the demo (a factory module of its own).
SLOWER = (ROOT / "tests" / "wide_demo.py").read_text()

# The only expressions the workflow and the action may use: what this runner can evaluate
# exactly (`steps.` only in the action's outputs, read from its steps' GITHUB_OUTPUT).
EXPRESSION = re.compile(r"\$\{\{\s*(env|secrets|github|inputs)\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


class Runner:
    """Runs one job of a workflow the way a self-hosted GitHub runner does: job env, the
    steps in order under `bash -e`, `if: always()` steps after a failure, GITHUB_PATH,
    GITHUB_STEP_SUMMARY, RUNNER_TEMP; this repository's action (action.yml) runs its
    steps, other `uses:` steps are checked, not run (checkout is the folder). Install
    steps are checked, and the runner's temporary folder already holds what they install
    (`edgecomp-venv`, the wheel's environment)."""

    def __init__(self, workflow: dict, *, workdir: Path, secrets: dict[str, str],
                 github: dict[str, str], runner_temp: Path):
        self.job = workflow["jobs"]["hil"]
        self.workdir = workdir
        self.secrets, self.github = secrets, github
        self.summary = workdir.parent / f"summary-{github['run_id']}.md"
        self.github_path = workdir.parent / f"path-{github['run_id']}"
        self.runner_temp = runner_temp
        self.uploaded: list[Path] = []
        self.junit: list[Path] = []
        self.action_outputs: dict[str, str] = {}
        self.log = ""  # what the run steps printed, for failure messages

    def expand(self, text: str, env: dict[str, str], inputs: dict[str, str] | None = None) -> str:
        leftover = re.sub(EXPRESSION, "", text)
        assert "${{" not in leftover, f"an expression this runner cannot evaluate: {text}"
        scopes = {"env": env, "secrets": self.secrets, "github": self.github,
                  "inputs": inputs or {}}
        return EXPRESSION.sub(lambda m: scopes[m.group(1)].get(m.group(2), ""), text)

    def install(self, step: dict) -> None:
        """An install step: edgecomp from pip, torch pinned, into RUNNER_TEMP's venv, put
        on GITHUB_PATH (done already: the wheel's environment is there)."""
        text = step["run"]
        assert "pip install" in text and '"torch==2.13.0"' in text, text
        assert '"$RUNNER_TEMP/edgecomp-venv/bin"' in text and "$GITHUB_PATH" in text, text
        assert (self.runner_temp / "edgecomp-venv" / "bin" / "edgecomp").is_file()
        with self.github_path.open("a") as handle:
            handle.write(f"{self.runner_temp / 'edgecomp-venv' / 'bin'}\n")

    def shell(self, script: str, env: dict[str, str]) -> int:
        extra = [line for line in self.github_path.read_text().splitlines() if line]
        step_env = {**env, "PATH": os.pathsep.join([*extra, env["PATH"]])}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               script], cwd=self.workdir, env=step_env, capture_output=True,
                              text=True, timeout=900)
        self.log += done.stdout + done.stderr
        return done.returncode

    def run(self) -> dict[str, int]:
        # The wheel's edgecomp, not this checkout's: no PYTHONPATH of the tests'.
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
               "GITHUB_STEP_SUMMARY": str(self.summary), "RUNNER_TEMP": str(self.runner_temp),
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
                outcome[name] = self.use(step, env)
            elif step.get("id") == "install":
                self.install(step)
                outcome[name] = 0
            else:
                outcome[name] = self.shell(self.expand(step["run"], env), env)
            failed = failed or outcome[name] != 0
        return outcome

    def run_action(self, inputs: dict[str, str], env: dict[str, str]) -> int:
        """action.yml's composite steps, with its inputs' defaults; its outputs from the
        steps' GITHUB_OUTPUT files."""
        action = yaml.safe_load(ACTION.read_text())
        assert action["runs"]["using"] == "composite"
        assert set(inputs) <= set(action["inputs"]), inputs
        given = {name: inputs.get(name, spec.get("default", ""))
                 for name, spec in action["inputs"].items()}
        assert all(given[name] for name, spec in action["inputs"].items()
                   if spec.get("required")), given
        step_outputs: dict[str, dict[str, str]] = {}
        for index, step in enumerate(action["runs"]["steps"]):
            assert step["shell"] == "bash" and "${{" not in step["run"]  # inputs via env
            if step["name"] == "Install edgecomp":
                assert '"$GITHUB_ACTION_PATH"' in step["run"]  # this checkout, with pip
                self.install(step)
                continue
            output = self.workdir.parent / f"output-{self.github['run_id']}-{index}"
            output.write_text("")
            step_env = {**env, "GITHUB_ACTION_PATH": str(ROOT), "GITHUB_OUTPUT": str(output),
                        **{k: self.expand(str(v), env, given)
                           for k, v in (step.get("env") or {}).items()}}
            status = self.shell(step["run"], step_env)
            step_outputs[step.get("id", "")] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if line)
            if status != 0:
                break
        self.action_outputs = {
            name: step_outputs[m.group(1)].get(m.group(2), "")
            for name, spec in action["outputs"].items()
            if (m := re.fullmatch(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}",
                                  spec["value"]))}
        assert set(self.action_outputs) == set(action["outputs"])
        return status

    def use(self, step: dict, env: dict[str, str]) -> int:
        action = step["uses"].split("@")[0]
        inputs = {k: self.expand(str(v), env) for k, v in (step.get("with") or {}).items()}
        if action.endswith("/edgecomp"):
            return self.run_action(inputs, env)
        if action == "actions/checkout":
            assert (self.workdir / ".git").exists()
        elif action == "actions/upload-artifact":
            self.uploaded = [self.workdir / line.strip()
                             for line in inputs["path"].splitlines() if line.strip()]
        elif action == "mikepenz/action-junit-report":
            self.junit = [self.workdir / inputs["report_paths"]]
        else:
            raise AssertionError(f"an action this runner does not know: {action}")
        return 0


def without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="session")
def runner_temp(tmp_path_factory) -> Path:
    """A runner's temporary folder holding what the install steps make: edgecomp's wheel,
    built from this checkout, installed into `edgecomp-venv`, a virtual environment of its
    own. Its dependencies are this environment's (a .pth file names its site-packages, not
    processing their .pth files: this checkout's editable install stays out of it)."""
    folder = tmp_path_factory.mktemp("runner-temp")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", str(ROOT), "-w", str(folder / "dist")],
        env=without_pythonpath(), capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    noise = [line for line in (build.stdout + build.stderr).splitlines()
             if re.search(r"warn|deprecat", line, re.I)]
    assert noise == [], "\n".join(noise)  # a user's `pip install` shows the build's warnings
    venv = folder / "edgecomp-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", "--no-deps", "--disable-pip-version-check",
                    *map(str, (folder / "dist").glob("edgecomp-*.whl"))],
                   env=without_pythonpath(), check=True, capture_output=True, timeout=300)
    imported = subprocess.run([str(python), "-c", "import edgecomp; print(edgecomp.__file__)"],
                              cwd=folder, env=without_pythonpath(), check=True,
                              capture_output=True, text=True).stdout.strip()
    assert Path(imported).is_relative_to(site.stdout.strip()), imported
    return folder


@pytest.fixture
def project(tmp_path, board, runner_temp):
    """A user's repository outside this checkout, on branch main: a model module of its
    own and what the installed `edgecomp ci init --target BOARD` wrote."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "wide_demo.py").write_text(SLOWER)
    git(folder, "init", "-q", "-b", "main")
    init = subprocess.run([str(runner_temp / "edgecomp-venv" / "bin" / "edgecomp"), "ci",
                           "init", "--target", board.name], cwd=folder,
                          env=without_pythonpath(), capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    git(folder, "add", ".")
    git(folder, "-c", "user.name=ci", "-c", "user.email=ci@example.org", "commit", "-qm", "ci")
    return folder


def workflow_for(project: Path, *, model: str = "", data: str = "") -> dict:
    """The workflow `ci init` wrote, as a user adapts it: the model and its data, one
    format and thread (steadier timing on a shared 2-core machine), fewer timed runs."""
    workflow = yaml.safe_load((project / ".github" / "workflows" / "edgecomp.yml").read_text())
    env = workflow["jobs"]["hil"]["env"]
    env.update(EDGECOMP_MODEL=model, EDGECOMP_DEPLOY_ARGS=deploy_args(data))
    return workflow


def deploy_args(data: str = "") -> str:
    return f"--format tflite --threads 1 --runs 30 --seconds 0.5 {data}"


def through_the_action(workflow: dict, inputs: dict[str, str]) -> dict:
    """The workflow with its install, deploy and summary steps replaced by the action."""
    job = workflow["jobs"]["hil"]
    steps = [step for step in job["steps"]
             if step.get("id") not in ("install", "hil") and step.get("name") != "Gate summary"]
    steps.insert(1, {"id": "hil", "uses": "owner/edgecomp@main", "with": inputs})
    job["steps"] = steps
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


def test_the_action_installs_this_checkout_and_runs_the_shipped_script():
    action = yaml.safe_load(ACTION.read_text())
    assert set(action["inputs"]) == {"target", "model", "baseline", "deploy-args", "gate-args",
                                     "out", "python"}
    assert [name for name, spec in action["inputs"].items() if spec.get("required")] == \
        ["target"]
    scripts = [step["run"] for step in action["runs"]["steps"]]
    assert '"torch==2.13.0" "$GITHUB_ACTION_PATH"' in scripts[0]
    shipped = re.search(r'"\$GITHUB_ACTION_PATH/([^"]+)"', scripts[1]).group(1)
    assert (ROOT / shipped).samefile(CI / "hil.sh")
    used = set(re.findall(r"inputs\.([\w-]+)", ACTION.read_text()))
    assert used == set(action["inputs"])  # every input reaches a step
    for script in scripts:
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


@pytest.mark.slow
def test_ci_in_a_user_repository_runs_end_to_end_against_the_simulated_board(
        board, project, runner_temp, results_db, demo_source, digits_npz, monkeypatch):
    clean_ci_variables(monkeypatch)
    secrets = {"EDGECOMP_DB": results_db}

    # 1. A push to main: measured, nothing to compare with yet, so it passes and becomes
    #    the baseline.
    push = Runner(workflow_for(project), workdir=project, secrets=secrets,
                  runner_temp=runner_temp, github={"run_id": "101", "event_name": "push",
                                                   "ref_name": "main", "head_ref": ""})
    outcome = push.run()
    assert outcome["hil"] == 0, push.log
    assert all(path.is_file() for path in push.uploaded), push.uploaded
    assert {p.name for p in push.uploaded} == {"report.html", "gate.html", "junit.xml",
                                               "gate.json", "results.json"}
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
        same = Runner(workflow_for(project), workdir=project, secrets=secrets,
                      runner_temp=runner_temp,
                      github={"run_id": attempt, "event_name": "pull_request",
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
            again = Runner(workflow_for(project), workdir=project, secrets=secrets,
                           runner_temp=runner_temp,
                           github={"run_id": main_runs[-1], "event_name": "push",
                                   "ref_name": "main", "head_ref": ""})
            assert again.run()["hil"] == 0, again.log
    assert outcome["hil"] == 0, same.log
    cases = [case for suite in JUnitXml.fromfile(str(same.junit[0])) for case in suite]
    assert cases and not any(case.result and case.result[0]._tag == "failure"
                             for case in cases)
    assert "demo-cnn" in same.summary.read_text()  # the gate's table is the job summary
    report = (project / "edgecomp-ci" / "report.html").read_text()
    assert f"ci-{attempt}" in report and "ci-101" in report  # this build beside the baseline

    # 3. A pull request whose model (the repository's own module) has twice the channels,
    #    measured through the GitHub Action: a regression, the build fails, and the report
    #    and JUnit are still kept. It carries the demo's name (`--name`), as a new release
    #    of a model does, and the demo's own data, which a factory model must be given.
    calib, val = digits_npz
    slower = Runner(through_the_action(workflow_for(project), {
                        "target": board.name, "model": "wide_demo:demo_cnn",
                        "deploy-args": deploy_args(f"--name demo-cnn --calib {calib} "
                                                   f"--eval {val}"),
                        "gate-args": "--config ci/gate.toml"}),
                    workdir=project, secrets=secrets, runner_temp=runner_temp,
                    github={"run_id": "103", "event_name": "pull_request",
                            "ref_name": "8/merge", "head_ref": "feature"})
    outcome = slower.run()
    assert outcome["hil"] == 1, slower.log
    assert slower.action_outputs["verdict"] == "fail", slower.action_outputs
    assert slower.action_outputs["junit"] == "edgecomp-ci/junit.xml"
    assert all(path.is_file() for path in slower.uploaded)  # `if: always()` steps still ran
    assert slower.action_outputs["gate-report"] == "edgecomp-ci/gate.html"
    verdict = (project / "edgecomp-ci" / "gate.html").read_text()
    assert "regression" in verdict and "latency" in verdict  # the verdict heads its report
    assert "demo-cnn" in slower.summary.read_text()  # the action wrote the job summary
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
