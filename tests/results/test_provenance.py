"""Runs you can name: --tag, and the git commit and branch recorded with every result."""

from __future__ import annotations

import subprocess

import pytest

from edgecomp.cli import main
from edgecomp.errors import InputError
from edgecomp.results.provenance import check_tag, git_facts
from edgecomp.results.store import Store


def git(folder, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository with one commit on branch `main`, as the working directory."""
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                 "BUILDKITE_BRANCH", "BRANCH_NAME", "GIT_BRANCH"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    (folder / "model.txt").write_text("v1\n")
    git(folder, "add", "model.txt")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "v1")
    monkeypatch.chdir(folder)
    return folder


def test_git_facts_name_the_commit_branch_and_dirty_state(repo, monkeypatch):
    head = git(repo, "rev-parse", "HEAD")
    assert git_facts() == {"commit": head, "branch": "main", "dirty": False}
    (repo / "model.txt").write_text("v2\n")
    assert git_facts()["dirty"] is True
    git(repo, "checkout", "-q", "--detach")
    assert git_facts()["branch"] is None  # a detached checkout names no branch...
    monkeypatch.setenv("GITHUB_REF_NAME", "release/1.2")
    assert git_facts()["branch"] == "release/1.2"  # ...unless the CI says which


def test_outside_a_repository_there_are_no_git_facts(tmp_path):
    assert git_facts(tmp_path) is None


@pytest.mark.parametrize("bad", ["", "two words", "-starts-with-dash", "x" * 101, "a;rm -rf"])
def test_unusable_tags_are_refused(bad):
    with pytest.raises(InputError, match="not a usable name"):
        check_tag(bad)
    assert check_tag("v1.2+rc:3/main_x") == "v1.2+rc:3/main_x"


@pytest.mark.slow
def test_a_tagged_deploy_records_its_tag_commit_and_branch(repo, demo_source, results_db,
                                                          capsys):
    assert main(["deploy", "--target", "local", "--tag", "base", "--format", "tflite",
                 "--precision", "fp32", "--runs", "5", "--seconds", "0",
                 "--warmup-seconds", "0", "-o", str(repo / "out")]) == 0
    with Store() as store:
        (stored,) = store.records(tag="base")
        (run,) = store.runs(tag="base")
    assert stored.git == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "main",
                          "dirty": False}
    assert (run.git_branch, run.git_commit, run.id) == ("main", stored.git["commit"],
                                                        stored.run_id)
    assert main(["deploy", "--tag", "not a tag"]) == 1
    assert "not a usable name" in capsys.readouterr().err
