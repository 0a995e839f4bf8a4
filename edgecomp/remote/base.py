"""The transport interface: measure an artifact with the on-device agent, somewhere.

A transport returns the agent's typed reports (`edgecomp.agent.protocol`). A failed
measurement raises `DeviceError` with a sentence; it is never returned as a success.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, TypeVar

from edgecomp.agent.protocol import PROTOCOL_VERSION, AgentInfo, MeasureReport, ProtocolError
from edgecomp.errors import DeviceError

if TYPE_CHECKING:
    import numpy as np

R = TypeVar("R")


@dataclass(frozen=True)
class MeasureOptions:
    """How the agent times an artifact; mirrors the agent's `measure` flags."""

    runs: int = 50
    seconds: float = 1.0
    warmup_runs: int = 5
    warmup_seconds: float = 0.5
    threads: int | None = None
    runtime: str = "auto"
    delegate: str = "auto"  # auto, xnnpack, cpu, gpu, nnapi, tensorrt (the agent's --delegate)
    seed: int = 0
    lock_timeout: float = 600.0
    throttle_c: float | None = None  # the profile's throttle temperature; None: agent's 80 °C
    power_seconds: float | None = None  # the separate power pass; default: `seconds`
    power_hz: float = 50.0
    power_idle_seconds: float = 1.0
    # The delegate's accelerator missing on the board: "fail", or "cpu" (measure on the CPU;
    # the report's `fallback` says so and the record is flagged).
    on_missing_delegate: str = "fail"
    profile_ops: bool = False  # per-op times from the runtime's profiler, a pass apart

    def agent_args(self) -> list[str]:
        """The agent's command-line flags for these options."""
        args = ["--runs", str(self.runs), "--seconds", str(self.seconds),
                "--warmup-runs", str(self.warmup_runs),
                "--warmup-seconds", str(self.warmup_seconds),
                "--runtime", self.runtime, "--delegate", self.delegate,
                "--seed", str(self.seed), "--lock-timeout", str(self.lock_timeout)]
        args += ["--power-hz", str(self.power_hz),
                 "--power-idle-seconds", str(self.power_idle_seconds)]
        if self.power_seconds is not None:
            args += ["--power-seconds", str(self.power_seconds)]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        if self.throttle_c is not None:
            args += ["--throttle-c", str(self.throttle_c)]
        if self.on_missing_delegate != "fail":
            args += ["--on-missing-delegate", self.on_missing_delegate]
        if self.profile_ops:
            args += ["--profile-ops"]
        return args


def write_inputs(path: Path, inputs: Mapping[str, np.ndarray]) -> Path:
    """The agent's input file: `in0`, `in1`, ... (see `edgecomp.model.signature.stacked`)."""
    import numpy as np

    np.savez(path, **inputs)
    return path


def read_outputs(path: Path) -> list[np.ndarray]:
    """The agent's `run` output file: one stacked array per model output, in order."""
    from edgecomp.model.data import read_npz
    from edgecomp.errors import InputError

    try:
        arrays = read_npz(path)  # the board's file, read with the same limits as data
    except InputError as exc:
        raise DeviceError(f"the agent's outputs could not be read: {exc}") from exc
    count = len([k for k in arrays if k.startswith("out")])
    if any(f"out{k}" not in arrays for k in range(count)):
        raise DeviceError(f"the agent's outputs are incomplete: {sorted(arrays)}.")
    return [arrays[f"out{k}"] for k in range(count)]


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
    if not isinstance(report, dict) or not report.get("ok"):
        error = report.get("error") if isinstance(report, dict) else None
        version = report.get("protocol_version") if isinstance(report, dict) else None
        if version is not None and version != PROTOCOL_VERSION:
            # An older agent refuses the options a newer edgecomp sends: say which is old.
            raise DeviceError(f"{where}: the agent there speaks protocol version {version}, "
                              f"this edgecomp speaks {PROTOCOL_VERSION} ({error}); let "
                              "edgecomp ship its own agent, or update the agent there.")
        raise DeviceError(f"{where}: {error or 'the agent failed'}.")
    return report


def parse_report(kind: type[R], data: dict[str, Any], *, where: str) -> R:
    """A typed report from the agent's JSON; a protocol mismatch becomes one sentence."""
    try:
        return kind.from_dict(data)  # type: ignore[attr-defined]
    except ProtocolError as exc:
        raise DeviceError(f"the agent on {where} sent a report this edgecomp cannot read "
                          f"({exc}); update edgecomp on this machine so both sides match.") \
            from exc


def transport_errors() -> tuple[type[BaseException], ...]:
    """What talking to a board can raise: edgecomp's sentence, the OS's, paramiko's."""
    errors: list[type[BaseException]] = [DeviceError, OSError, EOFError]
    try:
        from paramiko import SSHException

        errors.append(SSHException)
    except ImportError:
        pass
    return tuple(errors)


class Transport(Protocol):
    """Somewhere the agent runs: this machine (`local`) or a board over SSH."""

    name: str  # "local" or "ssh": the record's `transport` field
    target: str  # the target's name, as the user gave it

    def info(self) -> AgentInfo:
        """Run the agent's `info`: runtimes, cores and the board's state."""
        ...

    def measure(self, artifact: Path, options: MeasureOptions,
                inputs: Mapping[str, np.ndarray] | None = None) -> MeasureReport:
        """Run the agent's `measure` on `artifact` (fed the first sample of `inputs`, else
        seeded data) and return its report."""
        ...

    def run_batch(self, artifact: Path, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run every sample of `inputs` (`in0`, ... stacked) through the artifact in the
        board's runtime; one stacked array per output."""
        ...

    def close(self) -> None:
        """Release connections and remove what this run put on the device."""
        ...
