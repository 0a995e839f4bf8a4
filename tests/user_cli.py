"""`edgecomp` run as a user would, in a subprocess, and the one sentence it refuses with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(cwd: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`edgecomp ARGV` in `cwd` (importable, for factories there) with its own store; wide
    columns keep a sentence on one line."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{cwd}", "COLUMNS": "1000",
           "EDGECOMP_DB": str(cwd / "results.db")}
    return subprocess.run([sys.executable, "-m", "edgecomp.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one sentence a refused command printed: exit 1, no traceback, one line."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
