"""The agent's commands as the host runs them on a board, through any transport.

A transport only moves files and runs the agent (`edgecomp.remote`); here its commands
are put together from those primitives: `info` (what the board is), `run` (a model's
outputs on stored inputs) and `measure` (timing, memory, power). `run` and `measure` take
the same `MeasureOptions`, so a model is verified in the very runtime, delegate and thread
count it is timed with. Reports come back typed (`edgecomp.agent.protocol`); while a long
loop runs there, its progress lines (`edgecomp.agent.progress`) reach `progress`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

from edgecomp.agent import progress as agent_progress
from edgecomp.agent.protocol import AgentInfo, MeasureReport, ProtocolError, RunReport
from edgecomp.errors import DeviceError, InputError
from edgecomp.remote.base import Transport

R = TypeVar("R")
ProgressFn = Callable[[str, int, int], None]

# Upper bounds of the timing options, stated in each flag's --help: a run that asks for
# more never ends in practice, and holds the board's lock while it runs.
MAX_RUNS = 1_000_000
MAX_SECONDS = 3600.0  # timed seconds per artifact
MAX_WARMUP_RUNS = 10_000
MAX_WARMUP_SECONDS = 600.0


def check_count(flag: str, value: object, *, low: int, high: int, unit: str = "runs") -> int:
    """`value` as a whole number from `low` to `high`; else InputError naming `flag`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{flag} must be a whole number of {unit} from {low} to {high}, "
                         f"not {value!r}.")
    return value


def check_seconds(flag: str, value: object, *, high: float, above_zero: bool = False) -> float:
    """`value` as a finite number of seconds from 0 (or above 0) to `high`; else InputError
    naming `flag` (inf and NaN included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not (0 < value if above_zero else 0 <= value) \
            or value > high:
        low = "above 0" if above_zero else "from 0"
        raise InputError(f"{flag} must be a number of seconds {low} and at most {high:g}, "
                         f"not {value!r}.")
    return float(value)


@dataclass(frozen=True)
class MeasureOptions:
    """How the agent runs and times an artifact; mirrors the agent's flags."""

    runs: int = 50
    seconds: float = 1.0
    warmup_runs: int = 5
    warmup_seconds: float = 0.5
    threads: int | None = None  # as planned (or set); the agent caps it at the board's cores
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

    def executor_args(self) -> list[str]:
        """The flags that choose what executes the model, shared by `run` and `measure`."""
        args = ["--runtime", self.runtime, "--delegate", self.delegate]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        if self.on_missing_delegate != "fail":
            args += ["--on-missing-delegate", self.on_missing_delegate]
        return args

    def agent_args(self) -> list[str]:
        """The agent's `measure` flags for these options."""
        args = ["--runs", str(self.runs), "--seconds", str(self.seconds),
                "--warmup-runs", str(self.warmup_runs),
                "--warmup-seconds", str(self.warmup_seconds), *self.executor_args(),
                "--seed", str(self.seed), "--lock-timeout", str(self.lock_timeout),
                "--power-hz", str(self.power_hz),
                "--power-idle-seconds", str(self.power_idle_seconds)]
        if self.power_seconds is not None:
            args += ["--power-seconds", str(self.power_seconds)]
        if self.throttle_c is not None:
            args += ["--throttle-c", str(self.throttle_c)]
        if self.profile_ops:
            args += ["--profile-ops"]
        return args


def parse_report(kind: type[R], data: dict[str, Any], *, where: str) -> R:
    """A typed report from the agent's JSON; a protocol mismatch becomes one sentence."""
    try:
        return kind.from_dict(data)  # type: ignore[attr-defined]
    except ProtocolError as exc:
        raise DeviceError(f"the agent on {where} sent a report this edgecomp cannot read "
                          f"({exc}); update edgecomp on this machine so both sides match.") \
            from exc


def write_inputs(path: Path, inputs: Mapping[str, np.ndarray]) -> Path:
    """The agent's input file: `in0`, `in1`, ... (see `edgecomp.model.signature.stacked`)."""
    np.savez(path, **inputs)
    return path


def read_outputs(path: Path) -> list[np.ndarray]:
    """The agent's `run` output file: one stacked array per model output, in order."""
    from edgecomp.model.data import read_npz

    try:
        arrays = read_npz(path)  # the board's file, read with the same limits as data
    except InputError as exc:
        raise DeviceError(f"the agent's outputs could not be read: {exc}") from exc
    count = len([k for k in arrays if k.startswith("out")])
    if any(f"out{k}" not in arrays for k in range(count)):
        raise DeviceError(f"the agent's outputs are incomplete: {sorted(arrays)}.")
    return [arrays[f"out{k}"] for k in range(count)]


def push_model(transport: Transport, model: Path) -> str:
    """Put a model on the board with the files it reads beside it (an ONNX model's external
    data, at the places the model names); the model's path there."""
    if model.suffix != ".onnx":
        return transport.push(model)
    from edgecomp.model.onnx import external_data_files

    beside = tuple(external_data_files(model))
    return transport.push(model, beside=beside) if beside else transport.push(model)


def run_agent(transport: Transport, args: Sequence[str], *, what: str,
              progress: ProgressFn | None = None, label: str = "") -> dict[str, Any]:
    """`transport.run_agent`, its progress lines shown as `progress("<label>: <phase>",
    done, total)`."""
    if progress is None or not _takes_stderr_line(transport):
        # A transport written before `stderr_line` runs the agent without live progress.
        return transport.run_agent(args, what=what)

    def stderr_line(text: str) -> None:
        step = agent_progress.parse(text)
        if step is not None:
            phase, done, total = step
            progress(f"{label}: {phase}", done, total)

    return transport.run_agent(args, what=what, stderr_line=stderr_line)


def _takes_stderr_line(transport: Transport) -> bool:
    parameters = inspect.signature(transport.run_agent).parameters
    return "stderr_line" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def info(transport: Transport) -> AgentInfo:
    """What the board says about itself: runtimes, cores and its state now."""
    return parse_report(AgentInfo, transport.run_agent(["info"], what="reading its state"),
                        where=transport.target)


def run(transport: Transport, model: str, inputs: str, outputs: str,
        options: MeasureOptions, *, progress: ProgressFn | None = None,
        name: str | None = None) -> RunReport:
    """Run every sample of the pushed `inputs` through the pushed `model` with `options`'
    runtime, delegate and threads; the agent writes `outputs` on the board."""
    name = name or Path(model).name
    return parse_report(RunReport, run_agent(
        transport, ["run", model, "--input-npz", inputs, "--output-npz", outputs,
                    *options.executor_args()],
        what=f"running {name} on the evaluation set", progress=progress,
        label=f"verifying {name}"), where=transport.target)


def time_model(transport: Transport, model: str, options: MeasureOptions, *,
               inputs: str | None = None, name: str | None = None,
               progress: ProgressFn | None = None) -> MeasureReport:
    """Time the pushed `model` (fed the first sample of the pushed `inputs`, else seeded
    data); the report says where it ran."""
    args = ["measure", model, *options.agent_args()]
    if transport.power_probe != "none":
        args += ["--power-probe", transport.power_probe]
    if inputs is not None:
        args += ["--input-npz", inputs]
    name = name or Path(model).name
    report = parse_report(MeasureReport, run_agent(
        transport, args, what=f"measuring {name}", progress=progress,
        label=f"measuring {name}"), where=transport.target)
    return dataclasses.replace(report, target=transport.facts())


def measure(transport: Transport, artifact: Path, options: MeasureOptions,
            inputs: Mapping[str, np.ndarray] | None = None, *,
            progress: ProgressFn | None = None) -> MeasureReport:
    """Push and time one file (fed the first sample of `inputs`, else seeded data)."""
    model = push_model(transport, artifact)
    with tempfile.TemporaryDirectory(prefix="edgecomp-measure-") as tmp:
        pushed = None if inputs is None else \
            transport.push(write_inputs(Path(tmp) / "in.npz", inputs))
        return time_model(transport, model, options, inputs=pushed, name=artifact.name,
                          progress=progress)


def outputs(transport: Transport, artifact: Path, inputs: Mapping[str, np.ndarray],
            options: MeasureOptions, *, progress: ProgressFn | None = None
            ) -> tuple[list[np.ndarray], RunReport]:
    """Push a file and its inputs, run every sample through it with `options`' executor,
    fetch the outputs (one stacked array per output) and remove them from the board."""
    model = push_model(transport, artifact)
    remote = transport.scratch("out.npz")
    with tempfile.TemporaryDirectory(prefix="edgecomp-run-") as tmp:
        try:
            pushed = transport.push(write_inputs(Path(tmp) / "in.npz", inputs))
            report = run(transport, model, pushed, remote, options, progress=progress,
                         name=artifact.name)
            transport.fetch(remote, Path(tmp) / "out.npz")
        finally:
            transport.clean([remote])
        return read_outputs(Path(tmp) / "out.npz"), report
