"""`prune`: pruning of the kind the target's plan chooses.

A recipe that says `name = "prune"` leaves the kind to the board: deploy fills `kind`
from the plan's `pruning` decision (channels for dense CPU and GPU kernels, 2:4 for
sparse tensor cores) and `round_to` from its `channel_multiple`, so one recipe prunes
each board the way that board gets faster.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

from torch import nn

from edgecomp.compress.base import (ChannelMultiple, DataContext, Epochs, Finite, LearningRate,
                                    PassReport, make_pass, register_pass)
from edgecomp.errors import InputError
from edgecomp.vocab import Precision, PruningKind


@register_pass
class PruneForTarget:
    """Channel, 2:4 or unstructured pruning, as the plan (or `kind`) says."""

    name: ClassVar[str] = "prune"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    # Filled in from the board's plan where a recipe leaves them open.
    plan_options: ClassVar[Mapping[str, str]] = {"kind": "pruning", "round_to": "channel_multiple"}

    def __init__(self, kind: str = "channel", amount: Finite = 0.5,
                 round_to: ChannelMultiple = 8, finetune_epochs: Epochs = 4,
                 lr: LearningRate = 1e-3):
        try:
            self.kind = PruningKind(kind)
        except ValueError:
            raise InputError(f"prune: kind is one of "
                             f"{', '.join(k.value for k in PruningKind)}.") from None
        if not 0.0 < amount < 1.0:
            raise InputError(f"prune: amount must be between 0 and 1, got {amount}.")
        self.amount, self.round_to = amount, round_to
        self.finetune_epochs, self.lr = finetune_epochs, lr

    def inner(self):
        """The concrete pass this kind becomes, or None for `none`."""
        common = {"finetune_epochs": self.finetune_epochs, "lr": self.lr}
        if self.kind == PruningKind.CHANNEL:
            return make_pass("prune.structured", {"ratio": self.amount,
                                                  "round_to": self.round_to, **common})
        if self.kind == PruningKind.SPARSE_2_4:
            return make_pass("prune.nm", {"n": 2, "m": 4, **common})
        if self.kind == PruningKind.UNSTRUCTURED:
            return make_pass("prune.magnitude", {"sparsity": self.amount, **common})
        return None

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        params = {k: (v.value if isinstance(v, PruningKind) else v) for k, v in vars(self).items()}
        inner = self.inner()
        if inner is None:
            report = PassReport(self.name, params=params)
            report.notes.append("kind none: the model is left unpruned")
            return copy.deepcopy(model), report
        model, done = inner.apply(model, ctx)
        report = PassReport(self.name, params={**params, "pass": inner.name},
                            metrics=done.metrics, files=done.files)
        report.notes.append(f"kind {self.kind.value}: ran {inner.name}")
        report.notes.extend(done.notes)
        return model, report
