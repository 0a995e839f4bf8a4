"""N:M semi-structured sparsity (2:4): in every group of M input weights keep the N largest.

Only sparse tensor cores (NVIDIA Ampere and later, through TensorRT) run it faster;
CPUs compute the zeros at full cost.
"""

from __future__ import annotations

import copy
from typing import Annotated, ClassVar, Mapping

import torch
from pydantic import Field, StrictInt
from torch import nn

from edgecomp.compress.base import (DataContext, Epochs, LearningRate, PassReport, register_pass,
                                     finetune)
from edgecomp.compress.prune import layer_sparsity, prunable_layers
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

GroupSize = Annotated[StrictInt, Field(le=64)]  # n of every m weights; 0 < n < m checked below


@register_pass
class NMSparsity:
    """N:M semi-structured sparsity (2:4): in every group of M input weights keep N."""

    name: ClassVar[str] = "prune.nm"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, n: GroupSize = 2, m: GroupSize = 4, finetune_epochs: Epochs = 2,
                 lr: LearningRate = 1e-3):
        if not 0 < n < m:
            raise InputError("prune.nm: need 0 < n < m (2:4 is what Ampere accelerates).")
        self.n, self.m, self.finetune_epochs, self.lr = n, m, finetune_epochs, lr

    def mask(self, weight: torch.Tensor) -> torch.Tensor:
        flat = weight.detach().reshape(weight.shape[0], -1)
        pad = (-flat.shape[1]) % self.m
        padded = torch.nn.functional.pad(flat.abs(), (0, pad), value=float("inf"))
        groups = padded.reshape(flat.shape[0], -1, self.m)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(2, groups.topk(self.n, dim=2).indices, True)
        return keep.reshape(flat.shape[0], -1)[:, :flat.shape[1]].reshape(weight.shape)

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        from torch.nn.utils import prune as torch_prune

        model = copy.deepcopy(model)
        layers = [(n, m) for n, m in prunable_layers(model)
                  if m.weight[0].numel() >= self.m]
        for _, module in layers:
            torch_prune.custom_from_mask(module, "weight", self.mask(module.weight))
        model = finetune(model, ctx, self.finetune_epochs, lr=self.lr)
        for _, module in layers:
            torch_prune.remove(module, "weight")
        report = PassReport(self.name, params=vars(self).copy(),
                            metrics={"layer_sparsity": layer_sparsity(model)})
        report.notes.append(f"{self.n}:{self.m} sparsity speeds up only sparse tensor cores "
                            "(NVIDIA Ampere and later, via TensorRT); CPUs run it dense")
        return model.eval(), report
