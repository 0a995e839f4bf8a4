"""The `local` target: the same on-device agent, run in a subprocess on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecomp.errors import DeviceError
from edgecomp.remote.base import AGENT_PATH, MeasureOptions


def parse_agent_output(stdout: str, *, where: str, stderr: str = "") -> dict[str, Any]:
    """The agent's one JSON object, or DeviceError with its sentence."""
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        raise DeviceError(f"the agent on {where} gave no result ({detail[:300]}).")
    try:
        report = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise DeviceError(f"the agent on {where} answered with broken JSON ({exc}).") from exc
    if not report.get("ok"):
        raise DeviceError(f"{where}: {report.get('error', 'the agent failed')}.")
    return report


class LocalTransport:
    """Runs the agent with this Python; nothing is copied anywhere."""

    name = "local"

    def __init__(self, *, timeout: float = 3600.0):
        self.target = "local"
        self.timeout = timeout

    def _agent(self, *args: str) -> dict[str, Any]:
        try:
            result = subprocess.run([sys.executable, str(AGENT_PATH), *args],
                                    capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(f"the local agent did not finish within {self.timeout:.0f} s.") \
                from exc
        return parse_agent_output(result.stdout, where="local", stderr=result.stderr)

    def info(self) -> dict[str, Any]:
        return self._agent("info")

    def measure(self, artifact: Path, options: MeasureOptions) -> dict[str, Any]:
        report = self._agent("measure", str(artifact), *options.agent_args())
        report["target"] = {"name": "local", "transport": "local"}
        return report

    def run_batch(self, artifact: Path, x: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="edgecomp-run-") as tmp:
            inputs, outputs = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            np.savez(inputs, x=x)
            self._agent("run", str(artifact), "--input-npz", str(inputs),
                        "--output-npz", str(outputs))
            with np.load(outputs) as archive:
                return archive["y"]

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
