"""Where a benchmark's table goes: its section of BENCHMARKS.md, or a smoke run's own file.

Every tools/bench script takes `--out FILE` (default BENCHMARKS.md) and `--smoke` (the
same code path with tiny sizes, for CI: its table goes to --out, else to a temporary file,
never to BENCHMARKS.md, whose numbers a smoke run must not replace). A script replaces only
its own section ("## Title" up to the next "## "), leaving the rest of the file as it was.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "BENCHMARKS.md"


def add_output_arguments(parser: argparse.ArgumentParser, *, smoke: str) -> None:
    """--out and --smoke; `smoke` says what the script's smoke mode runs."""
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file whose section this replaces (default "
                             "BENCHMARKS.md; with --smoke a temporary file)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"a quick check that the benchmark still runs: {smoke}; the "
                             "table goes to --out (never BENCHMARKS.md)")


def output_path(parser: argparse.ArgumentParser, args: argparse.Namespace, name: str) -> Path:
    """The file the table goes to; a smoke run never writes BENCHMARKS.md."""
    if not args.smoke:
        return args.out or BENCHMARKS
    if args.out is None:
        handle, path = tempfile.mkstemp(prefix=f"edgecomp-{name}-smoke-", suffix=".md")
        os.close(handle)
        return Path(path)
    if args.out.resolve() == BENCHMARKS.resolve():
        parser.error("--smoke writes a table of tiny sizes: give --out another file than "
                     "BENCHMARKS.md (or leave --out out for a temporary file)")
    return args.out


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace `heading`'s section of the markdown file (or add it at the end)."""
    text = path.read_text() if path.exists() and path.stat().st_size else "# Benchmarks\n\n"
    start = text.find(heading + "\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


def cpu_model() -> str:
    """This machine's CPU, as /proc/cpuinfo names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

