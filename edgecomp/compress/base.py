"""The compression pass interface and its registry.

A pass takes a model and the data context and returns a new model plus a report of
what it did. Passes register themselves by name with `@register_pass` in the module of
their technique (`edgecomp.registry`); the CLI and the recipe loader read `PASSES`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Mapping, Protocol

import pydantic
import torch
from pydantic import Field, StrictInt
from torch import nn

from edgecomp.config import SCHEMA, validate
from edgecomp.model.data import Dataset
from edgecomp.errors import InputError
from edgecomp.registry import Registry
from edgecomp.model.train import train_classifier
from edgecomp.vocab import Precision

# The ranges pass options share. A pass annotates its __init__ options with them and
# `make_pass` checks every option against the annotations before the pass is built, so a
# recipe asking for 10^9 epochs or a NaN learning rate is refused, naming the option.
Epochs = Annotated[StrictInt, Field(ge=0, le=1000)]
Steps = Annotated[StrictInt, Field(ge=1, le=100)]
LearningRate = Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]
ChannelMultiple = Annotated[StrictInt, Field(ge=1, le=1024)]
Finite = Annotated[float, Field(allow_inf_nan=False)]  # where the pass checks the range

ProgressFn = Callable[[str, int, int], None]
"""progress(step_description, done, total); the CLI turns it into a progress bar."""


@dataclass
class DataContext:
    """What a pass may use besides the model: data, the example input, a teacher, a seed."""

    example_input: torch.Tensor
    train: Dataset | None = None
    val: Dataset | None = None
    calib: Dataset | None = None
    teacher: nn.Module | None = None
    seed: int = 0
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    train_fn: Callable[..., nn.Module] | None = None
    progress: ProgressFn | None = None
    out_dir: Path | None = None  # where passes that write files (archives) put them
    stem: str = "model"  # file-name stem for those files: <stem>.ecdc


@dataclass
class PassReport:
    """What a pass did: its parameters, measured facts (sparsity, ranks...) and honest notes."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Files a pass produced beside the model (e.g. a Huffman-coded archive), name -> path.
    files: dict[str, str] = field(default_factory=dict)


class CompressionPass(Protocol):
    """One technique. Constructed from keyword options (CLI flags or a recipe table).

    Besides its name, each pass declares the facts recipes and exports depend on, so
    nobody keeps a list of pass names: `must_come_last` when its result is tied to the
    export (fake-quantized, rounded, binarized or clustered weights must not be trained
    further), `export_precision` when it implies one (qat: int8, fp16: fp16), and
    `plan_options`, the options the board's plan decides.
    """

    name: ClassVar[str]
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    # Options the board's plan fills in where a recipe leaves them open: option -> the plan
    # decision whose value it takes (`prune`'s kind from the plan's `pruning`).
    plan_options: ClassVar[Mapping[str, str]] = {}

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        """Return the compressed model (a new object or the input changed) and the report."""
        ...


def _declares_a_pass(cls: type) -> None:
    """The registry's check: TypeError naming the pass and what it fails to declare."""
    problems = []
    if not isinstance(getattr(cls, "name", None), str):
        problems.append("name must be a str")
    if not isinstance(getattr(cls, "must_come_last", None), bool):
        problems.append("must_come_last must be a bool")
    if not (getattr(cls, "export_precision", None) is None
            or isinstance(cls.export_precision, Precision)):
        problems.append("export_precision must be a Precision or None")
    decisions = getattr(cls, "plan_options", None)
    if not (isinstance(decisions, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in decisions.items())):
        problems.append("plan_options must map option names to plan decisions")
    if not callable(getattr(cls, "apply", None)):
        problems.append("apply() is missing")
    if problems:
        raise TypeError(f"compression pass {cls.__name__}: {'; '.join(problems)}")


# Pass name -> its class; each technique module of this package registers its pass.
PASSES = Registry("compression pass", "edgecomp.compress", check=_declares_a_pass)
register_pass = PASSES.register()  # class decorator: the pass under its `name`


def make_pass(name: str, options: dict[str, Any]) -> CompressionPass:
    """Build a registered pass, its options checked against the annotations and ranges of
    its __init__; unknown names, options or values out of range become one sentence."""
    if name not in PASSES:
        raise InputError(f"unknown compression pass {name!r}; choose one of "
                         f"{', '.join(sorted(PASSES))}.")
    schema = options_schema(PASSES[name])
    if schema is not None:
        known = [f.name for f in dataclasses.fields(schema)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise InputError(f"pass {name!r}: bad options {sorted(options)} ("
                             f"{', '.join(unknown)} unknown; it takes "
                             f"{', '.join(known) or 'none'}).")
        checked = validate(dict(options), schema, source=f"pass {name!r}")
        options = {key: getattr(checked, key) for key in options}
    try:
        return PASSES[name](**options)
    except TypeError as exc:
        raise InputError(f"pass {name!r}: bad options {sorted(options)} ({exc}).") from exc


@functools.cache
def options_schema(cls: type) -> type | None:
    """A pass's keyword options as an `edgecomp.config` schema: the names, annotations
    (with their ranges) and defaults of its __init__; None when it takes **options."""
    init = cls.__init__
    parameters = [p for p in inspect.signature(init).parameters.values() if p.name != "self"]
    if init is object.__init__:
        parameters = []
    if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters):
        return None
    hints = typing.get_type_hints(init, include_extras=True)
    namespace: dict[str, Any] = {"__annotations__": {p.name: hints.get(p.name, Any)
                                                     for p in parameters}}
    namespace.update({p.name: p.default for p in parameters if p.default is not p.empty})
    options = type(f"{cls.__name__}Options", (), namespace)
    return pydantic.dataclasses.dataclass(options, frozen=True, kw_only=True, config=SCHEMA)


def finetune(model: nn.Module, ctx: DataContext, epochs: int, *, lr: float = 1e-3,
             distill: bool = False) -> nn.Module:
    """Recover accuracy after a pass with the user's training function or the built-in loop."""
    if epochs <= 0:
        return model
    if ctx.train_fn is not None:
        return ctx.train_fn(model, ctx, epochs)
    if ctx.train is None:
        raise InputError("this pass fine-tunes the model: give training data (--data/--train) "
                         "or set its fine-tuning epochs to 0.")
    return train_classifier(model, ctx.train, epochs=epochs, lr=lr, seed=ctx.seed,
                            loss_fn=ctx.loss_fn, teacher=ctx.teacher if distill else None,
                            progress=ctx.progress)
