"""What the library's entry points are asked: typed, frozen requests with the CLI's defaults.

`DeployRequest` holds everything `deploy` needs (the model, the data, what the user fixed
about the artifacts and their measurement, the plan decisions they set); every field has
a default that deploys the demo on this machine. Bad values are refused when a request is
made, with one sentence: the CLI builds these same requests from its flags, so the Python
API and the CLI accept and refuse exactly the same values. Words of a closed vocabulary
(formats, precisions) may be given as their text ("onnx") and become the enum members.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

from edgecomp.errors import InputError
from edgecomp.model.data import DEFAULT_CALIB_SIZE
from edgecomp.model.signature import ShapeChoice
from edgecomp.model.source import check_model_name
from edgecomp.pipeline.agent import (MAX_RUNS, MAX_SECONDS, MAX_WARMUP_RUNS, MAX_WARMUP_SECONDS,
                                      check_count, check_seconds)
from edgecomp.pipeline.rounds import Rounds, rounds_for
from edgecomp.quantize.target import AgreementTarget
from edgecomp.results.provenance import check_tag
from edgecomp.vocab import CalibrationMethod, Format, IoDtype, Precision, choices

E = TypeVar("E", bound=enum.Enum)


def vocabulary_word(vocabulary: type[E], value: Any, *, flag: str) -> E:
    """`value` as a member of `vocabulary` (a member, or its text), or InputError naming
    the flag and the words it takes."""
    try:
        return vocabulary(value)
    except ValueError:
        raise InputError(f"{flag} {value!r} is not one of {', '.join(choices(vocabulary))}."
                         ) from None


def _words(vocabulary: type[E], values: Any, *, flag: str) -> tuple[E, ...] | None:
    """Several words (one word alone is one), each once, in the order given."""
    if values is None:
        return None
    if isinstance(values, (str, enum.Enum)):
        values = (values,)
    return tuple(dict.fromkeys(vocabulary_word(vocabulary, v, flag=flag) for v in values))


@dataclass(frozen=True)
class ModelSpec:
    """Which model: `package.module:function` (+ weights), a .pt2 or .onnx file, or the demo."""

    spec: str | None = None  # None or "demo": the built-in demo CNN on the digits
    weights: Path | None = None
    input_shape: ShapeChoice | None = None  # one shape, or shapes by input name
    name: str | None = None  # the name results and files record (`--name`); None: the source's

    def __post_init__(self) -> None:
        if self.name is not None:
            check_model_name(self.name)

    @property
    def is_demo(self) -> bool:
        return self.spec in (None, "", "demo")


@dataclass(frozen=True)
class ExportChoices:
    """What the user fixed about the artifacts; `None` leaves the decision to the plan."""

    formats: tuple[Format, ...] | None = None
    precisions: tuple[Precision, ...] | None = None
    io_dtype: IoDtype | None = None
    per_tensor: bool = False
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    reduce_range: bool = False

    def __post_init__(self) -> None:
        changes = {
            "formats": _words(Format, self.formats, flag="--format"),
            "precisions": _words(Precision, self.precisions, flag="--precision"),
            "io_dtype": None if self.io_dtype is None else
            vocabulary_word(IoDtype, self.io_dtype, flag="--io-dtype"),
            "calibration_method": vocabulary_word(CalibrationMethod, self.calibration_method,
                                                  flag="--calibration-method")}
        for name, value in changes.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class DataSpec:
    """Where calibration and evaluation data come from."""

    calib: str | None = None  # a path, "demo", or "random"; None is an error for int8
    eval: str | None = None
    calib_size: int = DEFAULT_CALIB_SIZE
    eval_size: int | None = None
    seed: int = 0
    image_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.calib_size <= 0:
            raise InputError("--calib-size must be a positive number of samples.")


@dataclass(frozen=True)
class MeasureChoices:
    """How long to time each artifact; `threads`/`runtime` of None leave them to the plan.

    A timing number of None takes the default (`edgecomp.pipeline.timing`): the agent's
    options' on real hardware, fewer runs on an emulated board.
    """

    runs: int | None = None
    seconds: float | None = None
    warmup_runs: int | None = None
    warmup_seconds: float | None = None
    threads: int | None = None
    runtime: str | None = None  # an agent runtime name; None or "auto": the target/plan's
    profile_ops: bool = False  # per-op times from the runtime's profiler (`--profile-ops`)
    repeat: int | None = None  # interleaved rounds (None: remote.rounds.ROUNDS)
    min_time: float | None = None  # timed seconds per artifact over its rounds, at least

    def __post_init__(self) -> None:
        if self.runs is not None:
            check_count("--runs", self.runs, low=1, high=MAX_RUNS)
        if self.seconds is not None:
            check_seconds("--seconds", self.seconds, high=MAX_SECONDS)
        if self.warmup_runs is not None:
            check_count("--warmup-runs", self.warmup_runs, low=0, high=MAX_WARMUP_RUNS)
        if self.warmup_seconds is not None:
            check_seconds("--warmup-seconds", self.warmup_seconds, high=MAX_WARMUP_SECONDS)
        if self.threads is not None and self.threads < 1:
            raise InputError("--threads must be a positive number of threads.")
        rounds_for(self.repeat, self.min_time)  # refuses bad values with one sentence

    @property
    def rounds(self) -> Rounds:
        return rounds_for(self.repeat, self.min_time)


@dataclass(frozen=True)
class DeployRequest:
    """Everything `deploy` needs; every field has a default that deploys the demo locally."""

    model: ModelSpec = ModelSpec()
    target: str = "local"
    data: DataSpec = DataSpec()
    export: ExportChoices = ExportChoices()
    measure: MeasureChoices = MeasureChoices()
    overrides: Mapping[str, Any] = field(default_factory=dict)  # plan decisions (`--set`)
    recipe: str | None = None  # a recipe file or name: compress first
    train: str | None = None  # training data for passes that fine-tune
    loss: str | None = None  # "pkg.mod:fn": loss(outputs, labels) for the training loop
    train_fn: str | None = None  # "pkg.mod:fn": train(model, ctx, epochs) -> model
    baseline: bool = True  # with a recipe, also the uncompressed fp32 artifacts
    out_dir: Path | None = None  # default ./edgecomp-out/<model>
    rebuild: bool = False  # export again instead of reusing the artifact cache's files
    record: bool = True  # add the records to the results store
    command: str = "edgecomp.pipeline.deploy"  # stored with the run
    agreement: AgreementTarget = AgreementTarget()  # what int8 must reach against float
    search: bool = True  # with evaluation data: choose int8 among candidates by agreement
    tag: str | None = None  # the run's name (`--tag`), recorded with its git commit and branch
    targets: tuple[str, ...] = ()  # a fleet: measure on every one of these boards at once

    def __post_init__(self) -> None:
        check_tag(self.tag)

    @property
    def target_names(self) -> list[str]:
        """The boards to measure on: `targets`, else `target`; each once."""
        return list(dict.fromkeys(self.targets or (self.target,)))
