"""The `local` target: the same on-device agent zipapp, run in a subprocess here."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgecomp.agent.protocol import AgentInfo, MeasureReport, RunReport, TargetFacts
from edgecomp.errors import DeviceError
from edgecomp.remote.agent_bundle import agent_pyz
from edgecomp.remote.base import (MeasureOptions, parse_agent_output, parse_report,
                                  read_outputs, write_inputs)


class LocalTransport:
    """Runs the agent zipapp with this Python; nothing is copied anywhere."""

    name = "local"

    def __init__(self, *, timeout: float = 3600.0):
        self.target = "local"
        self.timeout = timeout

    def _agent(self, *args: str) -> dict[str, Any]:
        try:
            result = subprocess.run([sys.executable, str(agent_pyz()), *args],
                                    capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(f"the local agent did not finish within {self.timeout:.0f} s.") \
                from exc
        return parse_agent_output(result.stdout, where="local", stderr=result.stderr)

    def info(self) -> AgentInfo:
        return parse_report(AgentInfo, self._agent("info"), where="local")

    def measure(self, artifact: Path, options: MeasureOptions,
                inputs: Mapping[str, np.ndarray] | None = None) -> MeasureReport:
        with tempfile.TemporaryDirectory(prefix="edgecomp-measure-") as tmp:
            extra = [] if inputs is None else \
                ["--input-npz", str(write_inputs(Path(tmp) / "in.npz", inputs))]
            report = parse_report(MeasureReport,
                                  self._agent("measure", str(artifact), *options.agent_args(),
                                              *extra), where="local")
        return dataclasses.replace(report, target=TargetFacts(name="local", transport="local"))

    def run_batch(self, artifact: Path, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="edgecomp-run-") as tmp:
            path_in, path_out = write_inputs(Path(tmp) / "in.npz", inputs), Path(tmp) / "out.npz"
            parse_report(RunReport, self._agent("run", str(artifact), "--input-npz",
                                                str(path_in), "--output-npz", str(path_out)),
                         where="local")
            return read_outputs(path_out)

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
