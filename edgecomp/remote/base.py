"""The transport interface: measure an artifact with the on-device agent, somewhere.

A transport returns the agent's JSON report as a dict. A failed measurement raises
`DeviceError` with a sentence; it is never returned as a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

AGENT_PATH = Path(__file__).resolve().parent.parent / "agent" / "edgecomp_agent.py"


@dataclass(frozen=True)
class MeasureOptions:
    """How the agent times an artifact; mirrors the agent's `measure` flags."""

    runs: int = 50
    seconds: float = 1.0
    warmup_runs: int = 5
    warmup_seconds: float = 0.5
    threads: int | None = None
    runtime: str = "auto"
    seed: int = 0
    lock_timeout: float = 600.0
    power_seconds: float | None = None  # the separate power pass; default: `seconds`
    power_hz: float = 50.0
    power_idle_seconds: float = 1.0

    def agent_args(self) -> list[str]:
        """The agent's command-line flags for these options."""
        args = ["--runs", str(self.runs), "--seconds", str(self.seconds),
                "--warmup-runs", str(self.warmup_runs),
                "--warmup-seconds", str(self.warmup_seconds),
                "--runtime", self.runtime, "--seed", str(self.seed),
                "--lock-timeout", str(self.lock_timeout)]
        args += ["--power-hz", str(self.power_hz),
                 "--power-idle-seconds", str(self.power_idle_seconds)]
        if self.power_seconds is not None:
            args += ["--power-seconds", str(self.power_seconds)]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        return args


class Transport(Protocol):
    """Somewhere the agent runs: this machine (`local`) or a board over SSH."""

    name: str  # "local" or "ssh": the record's `transport` field
    target: str  # the target's name, as the user gave it

    def measure(self, artifact: Path, options: MeasureOptions) -> dict[str, Any]:
        """Run the agent's `measure` on `artifact` and return its JSON report."""
        ...

    def close(self) -> None:
        """Release connections and remove what this run put on the device."""
        ...
