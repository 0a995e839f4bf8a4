"""`edgecomp ci init`: hardware-in-the-loop CI for the user's own repository.

It writes the shipped CI files (package data, `edgecomp/shipped/ci/`) into a repository:
a GitHub Actions workflow for one board, the `hil.sh` script it runs (which any other CI
system can run too) and the gate's thresholds. All of them or none: existing files are
kept unless `--force`, and a failed write leaves no file changed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from edgecomp.commands import args as shared
from edgecomp.errors import InputError

WORKFLOW = Path(".github/workflows/edgecomp.yml")
SCRIPT = Path("ci/hil.sh")
GATE_CONFIG = Path("ci/gate.toml")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("ci", help="set up hardware-in-the-loop CI in a repository")
    commands = parser.add_subparsers(dest="ci_command", metavar="SUBCOMMAND")
    init = commands.add_parser(
        "init", help="write a GitHub Actions workflow, ci/hil.sh and ci/gate.toml",
        description=f"Write {WORKFLOW} (a GitHub Actions workflow for a self-hosted runner "
                    f"that reaches the board), {SCRIPT} (deploy, gate against main, report: "
                    f"runs on any CI system) and {GATE_CONFIG} (the gate's thresholds) into "
                    "a repository. Existing files are kept unless --force.")
    init.add_argument("--target", required=True, metavar="NAME",
                      help="the board: a target in the runner's inventory")
    shared.add_output_arg(init, "--dir", folder=True, default=Path("."),
                          help="the repository's top folder (default: this folder)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(func=run_init)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def ci_files(target: str) -> dict[Path, tuple[str, int]]:
    """What `ci init` writes for `target`: path in the repository -> (text, file mode)."""
    import jinja2

    from edgecomp import __version__, paths
    from edgecomp.hardware.targets import SAFE_NAME

    if not SAFE_NAME.match(target):
        raise InputError(f"--target {target!r} is not a target name: use letters, digits, "
                         "'.', '_' and '-' (up to 63), starting with a letter or digit.")
    shipped = paths.shipped("ci")
    # `<< name >>` marks a value: the workflow's own `${{ ... }}` expressions stay as written.
    template = jinja2.Environment(
        variable_start_string="<<", variable_end_string=">>", keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False,
    ).from_string(shipped.joinpath("workflow.yml.j2").read_text(encoding="utf-8"))
    workflow = template.render(target=target, label=f"board-{target}",
                               requirement=f"edgecomp=={__version__}")
    return {WORKFLOW: (workflow, 0o644),
            SCRIPT: (shipped.joinpath("hil.sh").read_text(encoding="utf-8"), 0o755),
            GATE_CONFIG: (shipped.joinpath("gate.toml").read_text(encoding="utf-8"), 0o644)}


def write_all(folder: Path, files: dict[Path, tuple[str, int]], *, force: bool) -> list[Path]:
    """Write `files` under `folder`, all or none: each goes to a temporary name first and
    only once every one is written are they renamed into place. Returns the paths."""
    import os

    from edgecomp.atomic import atomic_path

    if not folder.is_dir():
        raise InputError(f"--dir {folder} is not a folder; name the repository's top folder.")
    targets = {folder / relative: content for relative, content in files.items()}
    taken = [path for path in targets if path.exists() or path.is_symlink()]
    if taken and not force:
        names = ", ".join(str(path) for path in taken)
        raise InputError(f"{names} already exist{'s' if len(taken) == 1 else ''}; nothing was "
                         "written: pass --force to overwrite, or move them away.")
    with contextlib.ExitStack() as stack:
        for path, (text, mode) in targets.items():
            if path.is_dir():
                raise InputError(f"{path} is a folder; move it away to write the file there.")
            tmp = stack.enter_context(atomic_path(path))
            tmp.write_text(text, encoding="utf-8")
            os.chmod(tmp, mode)
    return list(targets)


def run_init(args) -> int:
    from edgecomp.commands.ui import console

    written = write_all(args.dir, ci_files(args.target), force=args.force)
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False)
    console.print(f"Next: commit them, register a self-hosted runner that reaches "
                  f"{args.target} with the label board-{args.target}, and add the target "
                  "to its inventory (edgecomp targets trust "
                  f"{args.target}). Other CI systems run {SCRIPT} with EDGECOMP_TARGET set.",
                  markup=False, highlight=False)
    return 0
