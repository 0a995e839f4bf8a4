"""Every command shown in the README's code blocks is one the CLI accepts, and those a
reader can run as written run (a reader once copied `edgecomp plan --format` from the
README and was refused).

The README is read when the tests run, so blocks added later are checked too. In a shell
code block each line whose program is edgecomp (`edgecomp`, `.venv/bin/edgecomp`),
`python -m MODULE` or a script of this repository (`tools/...`, `examples/...`) is a
command; `a && b` are two commands, and `x list | check NAME` are alternatives (the
README's convention), as are `[optional parts]`. Words in capitals (`MODEL`, `T`, `NAME`,
`SPEC`) and `[...]` mark the reference form of a command: it is parsed, with the optional
parts included, but not run. A line whose program the test does not know fails the test
until it is taught (FOREIGN). Python blocks are run by tests/test_pipeline.py.

`test_readme_commands_run` runs the others in README order in a scratch folder laid out
like a checkout (tools/, examples/, .venv/bin/edgecomp and .venv/bin/python), which is a
git repository on `main`, with a HOME of its own and no EDGECOMP_*/XDG_* settings of the
user's: edgecomp's defaults put the inventory, store and caches under that HOME. Only the
commands in NOT_RUN are left out, each with its reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Runnable as written, but not run here; each entry must match a README command.
NOT_RUN = {
    r"^\./tools/setup$": "creates .venv and installs edgecomp with pip: the environment "
                         "these tests run in (CI runs it before them)",
    r"-m pytest\b": "runs the test suite this test is part of (its flags are checked "
                    "with --help)",
    r"--target pi-a --target pi-b --target jetson": "names boards of the reader's "
                                                    "inventory; tests/remote/test_fleet.py "
                                                    "deploys to a fleet of simulated boards",
    r"--targets profile=pi4": "the reader's boards of profile pi4 (see above)",
    r"--targets group=lab": "the reader's boards in group lab (see above)",
}

# Commands whose documented outcomes include a non-zero status: gate exits 1 on a
# regression and 2 when it cannot judge (here: no run on main to compare with yet).
EXIT_STATUS = {r"^edgecomp gate ": {0, 1, 2}}

# Programs of other projects that a command block may show; not checked here.
FOREIGN = {"pip": "installs packages", "apt-get": "installs system packages"}

SHELL_BLOCKS = {"", "sh", "shell", "bash", "console"}
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
REFUSED = re.compile(r"^(usage:|error:|Traceback)|unrecognized arguments", re.M)


@dataclass
class Command:
    """One command as the README shows it."""

    line: int  # where it is in README.md
    text: str  # as a shell runs it: one alternative, continuation lines joined
    words: list[str] = field(default_factory=list)  # the program and its arguments
    reference: bool = False  # shows placeholders or optional parts: parsed, not run

    @property
    def program(self) -> str:
        return self.words[0]

    @property
    def kind(self) -> str:
        name = Path(self.program).name
        if re.fullmatch(r"(.*/)?edgecomp", self.program):  # not `edgecomp/`, a folder
            return "edgecomp"
        if re.fullmatch(r"python(3(\.\d+)?)?", name) and self.words[1:2] == ["-m"]:
            return "module"
        if name in FOREIGN:
            return "foreign"
        if (ROOT / self.program).is_file():
            return "script"
        return "unknown"

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def code_blocks(text: str) -> list[tuple[int, str, str]]:
    """(first line, info string, content) of every fenced code block, read by
    markdown-it-py (rich's own Markdown parser), so that fences in lists or quotes and
    unusual fence lengths are found as a reader's viewer finds them."""
    from markdown_it import MarkdownIt

    return [(token.map[0] + 2, token.info.strip(), token.content)
            for token in MarkdownIt().parse(text) if token.type == "fence"]


def commands_in(text: str) -> list[Command]:
    """Every command in the shell code blocks of a README text, in order."""
    found = []
    for first, info, content in code_blocks(text):
        if info.split()[:1] and info.split()[0] not in SHELL_BLOCKS:
            continue
        block = []
        pending, start = "", 0
        for offset, line in enumerate(content.splitlines()):
            if not pending:
                start = first + offset
            if line.rstrip().endswith("\\"):
                pending += line.strip()[:-1].rstrip() + " "
                continue
            block += _commands_of_line(start, pending + (line.strip() if pending else line))
            pending = ""
        if any(command.kind != "unknown" for command in block):  # else e.g. a file tree
            found += block
    return found


def _commands_of_line(line: int, text: str) -> list[Command]:
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return [Command(line, text.strip(), [text.strip()])]  # unknown: fails the test
    commands = []
    for part in _split(words, "&&"):
        alternatives = [words for words in _split(part, "|") if words]
        if not alternatives:
            continue
        prefix = alternatives[0][:-1]  # `targets list | check NAME`: `targets` is shared
        for index, alternative in enumerate(alternatives):
            full = alternative if index == 0 else prefix + alternative
            env = 0
            while env < len(full) - 1 and ENV_ASSIGNMENT.match(full[env]):
                env += 1
            program_words = [w.replace("[", "").replace("]", "") for w in full[env:]]
            commands.append(Command(
                line, shlex.join(full) if index or len(alternatives) > 1 or "&&" in words
                else _strip_comment(text),
                [w for w in program_words if w],
                reference=any("[" in w or "]" in w or PLACEHOLDER.fullmatch(w)
                              for w in full[env:])))
    return commands


def _split(words: list[str], separator: str) -> list[list[str]]:
    parts, current = [], []
    for word in words:
        if word == separator:
            parts.append(current)
            current = []
        else:
            current.append(word)
    return [*parts, current] if current else parts


def _strip_comment(text: str) -> str:
    """The line without its trailing `# comment` (kept as written otherwise, so that the
    shell expands `"$VARIABLE"` as a reader's would)."""
    return re.sub(r"\s+#\s.*$", "", text.strip())


def parse_problem(command: Command) -> str | None:
    """Why the CLI (or the repository) would refuse this command before running it."""
    kind = command.kind
    if kind == "unknown":
        return (f"{command}: a command whose program this test does not know; teach "
                "tests/test_readme_commands.py how to check it")
    if kind == "edgecomp":
        from edgecomp.cli import build_parser

        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                build_parser().parse_args(command.words[1:])
        except SystemExit as exc:
            if exc.code:
                return f"{command}: refused by edgecomp: {stderr.getvalue().strip()}"
        return None
    if kind == "module":
        module = command.words[2]
        if importlib.util.find_spec(module.split(".")[0]) is None or \
                importlib.util.find_spec(module) is None:
            return f"{command}: no module {module}"
        return None
    if kind == "script":
        path = ROOT / command.program
        if not os.access(path, os.X_OK):
            return f"{command}: {command.program} is not executable"
    return None


def readme() -> str:
    return README.read_text()


def test_every_readme_command_is_accepted():
    commands = commands_in(readme())
    assert sum(c.kind == "edgecomp" for c in commands) >= 20  # the README was read
    problems = [problem for problem in map(parse_problem, commands) if problem]
    assert not problems, "\n".join(problems)


def test_the_list_of_commands_not_run_matches_the_readme():
    texts = [command.text for command in commands_in(readme())]
    stale = [pattern for pattern in NOT_RUN if not any(re.search(pattern, t) for t in texts)]
    assert not stale, f"NOT_RUN entries matching no README command: {stale}"


def test_the_reader_of_this_test_is_told_what_it_sees():
    """The extraction on a README of one block: alternatives, optional parts,
    placeholders, continuations, comments and environment prefixes."""
    text = ("Some text.\n\n```\n"
            "edgecomp targets list | check NAME | trust NAME [--yes]\n"
            "edgecomp plan --target pi4 --frobnicate   # a flag the CLI does not have\n"
            "EDGECOMP=.venv/bin/edgecomp EDGECOMP_TARGET=sim-pi4 examples/ci/hil.sh\n"
            "edgecomp gate --baseline branch:main \\\n    --json gate.json\n"
            "./tools/setup && .venv/bin/edgecomp deploy --target local\n"
            "```\n\n```\nedgecomp/\n  cli.py    the command layer\n```\n")
    commands = commands_in(text)
    assert [(c.line, c.words, c.reference) for c in commands] == [
        (4, ["edgecomp", "targets", "list"], False),
        (4, ["edgecomp", "targets", "check", "NAME"], True),
        (4, ["edgecomp", "targets", "trust", "NAME", "--yes"], True),
        (5, ["edgecomp", "plan", "--target", "pi4", "--frobnicate"], False),
        (6, ["examples/ci/hil.sh"], False),
        (7, ["edgecomp", "gate", "--baseline", "branch:main", "--json", "gate.json"], False),
        (9, ["./tools/setup"], False),
        (9, [".venv/bin/edgecomp", "deploy", "--target", "local"], False)]
    assert commands[4].text == "EDGECOMP=.venv/bin/edgecomp EDGECOMP_TARGET=sim-pi4 " \
                               "examples/ci/hil.sh"
    problems = [p for p in map(parse_problem, commands) if p]
    assert len(problems) == 1 and "unrecognized arguments: --frobnicate" in problems[0]
    assert problems[0].startswith("README.md:5: edgecomp plan --target pi4 --frobnicate:")
    unknown = commands_in("```\nedgecomp compare\nmake install\n```\n")
    assert "does not know" in parse_problem(unknown[1])


# -- running them ----------------------------------------------------------------------

def scratch_checkout(folder: Path, demo_weights: Path) -> dict[str, str]:
    """A folder laid out like the reader's checkout after ./tools/setup, and the
    environment a reader's shell has there. Returns the environment."""
    folder.mkdir()
    for name in ("tools", "examples"):
        (folder / name).symlink_to(ROOT / name)
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, run in (("python", f'exec "{sys.executable}" "$@"'),
                      ("edgecomp", f'exec "{sys.executable}" -m edgecomp.cli "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{run}\n")
        (bin_dir / name).chmod(0o755)
    home = folder.parent / "home"
    # The demo as the README's first command leaves it, trained and cached: training it
    # on an empty cache is tests/commands/test_progress.py's (a minute on a busy machine).
    cached = home / ".cache" / "edgecomp" / "demo" / demo_weights.name
    cached.parent.mkdir(parents=True)
    shutil.copyfile(demo_weights, cached)
    ci_branch = {"GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                 "BUILDKITE_BRANCH", "BRANCH_NAME", "GIT_BRANCH"}
    shared = {"EDGECOMP_SIM_VENV", "EDGECOMP_SIM_CACHE", "EDGECOMP_SIM_MIRROR"}
    env = {key: value for key, value in os.environ.items()
           if not (key.startswith("EDGECOMP_") and key not in shared)
           and key not in ci_branch and not key.startswith("GITHUB_")
           and key not in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                           "XDG_STATE_HOME")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT),
               PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
               GITHUB_STEP_SUMMARY=str(folder / "step-summary.md"),  # as a runner sets it
               GIT_AUTHOR_NAME="reader", GIT_AUTHOR_EMAIL="reader@example.org",
               GIT_COMMITTER_NAME="reader", GIT_COMMITTER_EMAIL="reader@example.org")
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)
    return env


def not_run_reason(command: Command, env: dict[str, str]) -> str | None:
    if command.reference:
        return "reference form (placeholders or optional parts)"
    for pattern, reason in NOT_RUN.items():
        if re.search(pattern, command.text):
            return reason
    if command.kind == "foreign":
        return FOREIGN[Path(command.program).name]
    if "--arch arm64" in command.text:
        rootfs = Path(env["EDGECOMP_SIM_CACHE"]) / "rootfs"
        tools = ("debootstrap", "qemu-aarch64-static")
        path = os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/sbin"])
        if not all(shutil.which(tool, path=path) for tool in tools) or not rootfs.is_dir():
            # Building it downloads ~360 MB: tests/remote/test_arm64_board.py's job.
            return "no cached arm64 rootfs or no debootstrap/qemu-user-static here"
    return None


@pytest.mark.slow
def test_readme_commands_run(tmp_path, demo_source):
    from edgecomp.paths import cache_dir

    folder = tmp_path / "checkout"
    env = scratch_checkout(folder, cache_dir() / "demo" / "demo-cnn-v1.pt")
    ran, skipped, refused = [], [], []
    try:
        for command in commands_in(readme()):
            reason = not_run_reason(command, env)
            if command.kind == "module" and command.words[2] == "pytest":
                # Not run (NOT_RUN), but pytest must accept its flags.
                done = subprocess.run([sys.executable, *command.words[1:], "--help"],
                                      cwd=folder, env=env, capture_output=True, text=True,
                                      timeout=120)
                if done.returncode != 0:
                    refused.append(f"{command}: pytest refused it: {done.stderr[-500:]}")
            if reason:
                skipped.append(f"{command}  [not run: {reason}]")
                continue
            start = time.monotonic()
            done = subprocess.run(["bash", "-c", command.text], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=600)
            seconds = time.monotonic() - start
            ran.append(f"{seconds:6.1f} s  {command}")
            allowed = next((codes for pattern, codes in EXIT_STATUS.items()
                            if re.search(pattern, command.text)), {0})
            if done.returncode not in allowed or REFUSED.search(done.stderr):
                refused.append(f"{command}: exit {done.returncode}\n"
                               f"{done.stdout[-1500:]}\n{done.stderr[-2500:]}")
    finally:
        subprocess.run([str(ROOT / "tools" / "sim-board"), "stop"], cwd=folder, env=env,
                       capture_output=True, timeout=120)
    print("ran:\n" + "\n".join(ran) + "\nnot run:\n" + "\n".join(skipped))
    assert not refused, "README commands refused:\n\n" + "\n\n".join(refused)
    assert len(ran) >= 15, ran
