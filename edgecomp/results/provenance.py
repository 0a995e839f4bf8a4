"""Where a run came from: its name (`--tag`) and the git state of the working directory.

Every result is stamped with the commit, branch and dirty state of the repository the
command ran in, so a regression can be tied to the change that made it and a gate can
take "the latest run on main" as its baseline. CI checkouts are often detached (GitHub
Actions checks out a pull request's merge commit): the CI's own variables name the branch
there. Outside a repository, or without git, there is simply no git facts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from edgecomp.errors import InputError
from edgecomp.results.record import ResultRecord

# Letters, digits and . _ - / + : (a release "v1.2", a branch "feat/x", a date "2026-11-24").
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+:-]{0,99}")

# CI variables naming the branch of a detached checkout, most specific first.
_CI_BRANCH = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH",
              "BRANCH_NAME", "GIT_BRANCH")


def check_tag(tag: str | None) -> str | None:
    """The tag as given, or InputError naming what a tag may hold."""
    if tag is None:
        return None
    if not _TAG.fullmatch(tag):
        raise InputError(f"--tag {tag!r} is not a usable name: use 1 to 100 letters, digits "
                         "and . _ - / + : (starting with a letter or digit).")
    return tag


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_facts(cwd: Path | None = None) -> dict[str, Any] | None:
    """{"commit", "branch", "dirty"} of the repository around `cwd` (default the current
    directory), or None outside one. `branch` is None for a detached checkout unless a CI
    variable names it."""
    cwd = Path.cwd() if cwd is None else cwd
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return None
    branch = _git(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd)
    if not branch:
        branch = next((os.environ[name] for name in _CI_BRANCH if os.environ.get(name)), None)
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit, "branch": branch,
            "dirty": bool(status) if status is not None else None}


def stamp(records: list[ResultRecord], *, tag: str | None) -> list[ResultRecord]:
    """The records with the run's tag and git facts, as stored and written by --json."""
    git = git_facts()
    return [dataclasses.replace(record, tag=tag, git=git) for record in records]
