"""The `edgecomp` command: a thin layer that parses flags and calls the library."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edgecomp.errors import EdgecompError, plain_text, terminal_safe

UNEXPECTED = 70  # EX_SOFTWARE: an error edgecomp has no sentence for (a bug)

# What `edgecomp --version` reports beside edgecomp: the exporters and runtimes it uses,
# read from the installed packages' metadata (importing them would take seconds).
RUNTIME_PACKAGES = ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "onnx",
                    "onnxscript", "onnxruntime")

# Subcommand groups living beside their concept: every `edgecomp/commands/*_cmd.py` module
# has add_parser(subparsers); the flow commands come first in --help, the rest by name.
FIRST_COMMANDS = ["deploy_cmd", "bench_cmd", "compare_cmd", "compress_cmd", "targets_cmd",
                  "plan_cmd"]


def command_modules() -> list[str]:
    """The subcommand modules, found in the package (a new `*_cmd.py` needs no list)."""
    import pkgutil

    import edgecomp.commands

    found = sorted(info.name for info in pkgutil.iter_modules(edgecomp.commands.__path__)
                   if info.name.endswith("_cmd"))
    ordered = [name for name in FIRST_COMMANDS if name in found]
    ordered += [name for name in found if name not in ordered]
    return [f"edgecomp.commands.{name}" for name in ordered]


def version_text() -> str:
    """edgecomp's version and the versions of the exporters and runtimes installed beside
    it, one per line ("not installed" where one is missing)."""
    import importlib.metadata
    import platform

    def installed(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    from edgecomp import __version__

    lines = [f"edgecomp {installed('edgecomp') or __version__}",
             f"python {platform.python_version()}"]
    lines += [f"{package} {installed(package) or 'not installed'}"
              for package in RUNTIME_PACKAGES]
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """`--version`: print `version_text()` as written (argparse's own action re-wraps it)
    and exit 0; the versions are read only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgecomp",
        description="Compress a neural network, export it to LiteRT and ONNX, and measure it "
                    "on your own edge boards.")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks and library logs")
    parser.add_argument("--version", action=VersionAction, nargs=0,
                        help="show edgecomp's version and the exporters and runtimes it "
                             "found, then exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        handlers=[handler])
    if not args.debug:
        _quiet_runtimes()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from edgecomp.commands.ui import err_console

    from edgecomp.commands.args import check_outputs

    try:
        check_outputs(args)  # before any work: an unwritable -o/--json fails in a second
        return int(args.func(args) or 0)
    except EdgecompError as exc:
        if args.debug:
            raise
        from rich.text import Text

        from edgecomp.commands.ui import warn

        # One line in a log file; on a terminal, wrapped at words, never mid-word.
        warn(Text("error:", style="bold red"), str(exc))
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was recorded for the unfinished step.")
        return 130
    except Exception as exc:  # a bug: one sentence here, the traceback with --debug
        if args.debug:
            raise
        from rich.markup import escape

        text = " ".join(plain_text(str(exc)).split())[:300] or "no message"
        err_console.print(f"[bold red]error:[/bold red] edgecomp stopped on an unexpected "
                          f"{type(exc).__name__} ({escape(text)}). "
                          "Run again with --debug for the traceback and report it.",
                          markup=True, highlight=False, soft_wrap=True)
        return UNEXPECTED


class PlainFormatter(logging.Formatter):
    """Log lines without the terminal escape codes that other tools' text carries (they
    end up in CI logs and files, where they are noise), one line per message: what else
    a terminal cannot show (a line break in a file or model name) is escaped, so a name
    can never forge a log line."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.msg, record.args = terminal_safe(plain_text(record.getMessage())), None
        return super().format(record)


def _quiet_runtimes() -> None:
    """Keep TensorFlow/absl/torch chatter and paramiko's fault logs out of the user's terminal."""
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    # torch configures its own loggers when imported (after this runs), so levels set
    # here do not hold; its TORCH_LOGS setting does. --debug keeps everything.
    os.environ.setdefault("TORCH_LOGS", "-all")
    warnings.filterwarnings("ignore")
    for name in ("torch", "litert_torch", "absl", "onnxscript", "onnx_ir", "torchao"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # paramiko logs every fault of its transport thread at ERROR, most with a traceback
    # (about 30 lines when a reconnect fails); edgecomp's SSH boundary (SshTransport._guard,
    # ssh_link.open_client) turns the same fault into one sentence, so nothing of
    # paramiko's own is shown without --debug.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)


if __name__ == "__main__":
    sys.exit(main())
