"""The `edgecomp` command itself: `--version`."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from edgecomp import cli

ROOT = Path(__file__).resolve().parent.parent


def test_version_names_edgecomp_and_every_runtime_without_importing_them():
    code = ("import sys\n"
            "from edgecomp.cli import main\n"
            "try:\n    main(['--version'])\n"
            "except SystemExit as exc:\n    print('exit', exc.code)\n"
            "print('imported:', *[m for m in ('torch', 'onnx', 'onnxruntime', 'litert_torch',"
            " 'ai_edge_litert') if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0] == f"edgecomp {importlib.metadata.version('edgecomp')}"
    for package in ("torch", "litert-torch", "ai-edge-litert", "onnx", "onnxruntime"):
        assert f"{package} {importlib.metadata.version(package)}" in lines
    assert lines[-2:] == ["exit 0", "imported:"]  # nothing heavy was imported


def test_version_through_the_command_line_exits_zero():
    result = subprocess.run([sys.executable, "-m", "edgecomp.cli", "--version"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("edgecomp ") and "onnxruntime " in result.stdout


def test_version_says_which_runtime_is_missing(monkeypatch):
    monkeypatch.setattr(cli, "RUNTIME_PACKAGES", ("torch", "edgecomp-no-such-runtime"))
    text = cli.version_text().splitlines()
    assert text[-1] == "edgecomp-no-such-runtime not installed"
    assert text[-2] == f"torch {importlib.metadata.version('torch')}"
