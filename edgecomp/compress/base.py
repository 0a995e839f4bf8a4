"""The compression pass interface and its registry.

A pass takes a model and the data context and returns a new model plus a report of
what it did. Passes register themselves by name with `@register_pass`; the CLI and
the recipe loader read `PASSES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import torch
from torch import nn

from edgecomp.data import Dataset
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

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
    further), and `export_precision` when it implies one (qat: int8, fp16: fp16).
    """

    name: ClassVar[str]
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        """Return the compressed model (a new object or the input changed) and the report."""
        ...


PASSES: dict[str, type] = {}


def register_pass(cls: type) -> type:
    """Class decorator adding a pass to `PASSES` under its `name`."""
    if cls.name in PASSES:
        raise RuntimeError(f"compression pass {cls.name!r} registered twice")
    PASSES[cls.name] = cls
    return cls


def make_pass(name: str, options: dict[str, Any]) -> CompressionPass:
    """Build a registered pass, turning unknown names or options into one clear sentence."""
    if name not in PASSES:
        raise InputError(f"unknown compression pass {name!r}; choose one of "
                         f"{', '.join(sorted(PASSES))}.")
    try:
        return PASSES[name](**options)
    except TypeError as exc:
        raise InputError(f"pass {name!r}: bad options {sorted(options)} ({exc}).") from exc
