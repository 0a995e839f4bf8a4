"""Low-rank factorization: a layer becomes two thinner ones through a rank-k bottleneck (SVD)."""

from __future__ import annotations

import copy
from typing import Annotated, ClassVar, Mapping

import torch
from pydantic import Field, StrictInt
from torch import nn

from edgecomp.compress.base import (DataContext, Epochs, LearningRate, PassReport, register_pass,
                                     finetune)
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

Share = Annotated[float, Field(gt=0, le=1)]  # of the energy or of the parameters kept
MinParams = Annotated[StrictInt, Field(ge=0, le=2**31)]


def choose_rank(singular: torch.Tensor, *, energy: float | None, ratio: float | None,
                rows: int, cols: int) -> int:
    """Smallest rank keeping `energy` of sum(s^2), or meeting a parameter `ratio`."""
    if energy is not None:
        cumulative = torch.cumsum(singular ** 2, 0) / (singular ** 2).sum()
        return int((cumulative < energy).sum()) + 1
    return max(1, int(ratio * rows * cols / (rows + cols)))


def factorize(layer: nn.Module, rank: int) -> nn.Sequential:
    weight = layer.weight.detach()
    matrix = weight.reshape(weight.shape[0], -1)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    root = s[:rank].sqrt()
    first_w, second_w = (root[:, None] * vh[:rank]), (u[:, :rank] * root[None, :])
    if isinstance(layer, nn.Linear):
        first = nn.Linear(layer.in_features, rank, bias=False)
        second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
        first.weight.data.copy_(first_w)
        second.weight.data.copy_(second_w)
    else:
        first = nn.Conv2d(layer.in_channels, rank, layer.kernel_size, layer.stride,
                          layer.padding, layer.dilation, bias=False)
        second = nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None)
        first.weight.data.copy_(first_w.reshape(rank, *weight.shape[1:]))
        second.weight.data.copy_(second_w.reshape(layer.out_channels, rank, 1, 1))
    if layer.bias is not None:
        second.bias.data.copy_(layer.bias.detach())
    return nn.Sequential(first, second)


@register_pass
class LowRank:
    """SVD of Linear and Conv2d layers into a rank-k bottleneck where it saves parameters."""

    name: ClassVar[str] = "lowrank"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, energy: Share | None = 0.9, ratio: Share | None = None,
                 finetune_epochs: Epochs = 3, lr: LearningRate = 1e-3,
                 min_params: MinParams = 2048):
        if (energy is None) == (ratio is None):
            raise InputError("lowrank: give exactly one of energy (e.g. 0.9) or ratio.")
        self.energy, self.ratio = energy, ratio
        self.finetune_epochs, self.lr, self.min_params = finetune_epochs, lr, min_params

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        model = copy.deepcopy(model)
        ranks = {}
        for parent_name, parent in list(model.named_modules()):
            for child_name, child in list(parent.named_children()):
                if not isinstance(child, (nn.Linear, nn.Conv2d)) or \
                        (isinstance(child, nn.Conv2d) and child.groups != 1) or \
                        child.weight.numel() < self.min_params:
                    continue
                rows = child.weight.shape[0]
                cols = child.weight[0].numel()
                singular = torch.linalg.svdvals(child.weight.detach().reshape(rows, -1))
                rank = choose_rank(singular, energy=self.energy, ratio=self.ratio,
                                   rows=rows, cols=cols)
                if rank * (rows + cols) >= rows * cols:
                    continue  # no saving: keep the layer whole
                setattr(parent, child_name, factorize(child, rank))
                ranks[f"{parent_name}.{child_name}".strip(".")] = [rank, min(rows, cols)]
        params_before = sum(p.numel() for p in ctx.teacher.parameters()) \
            if ctx.teacher is not None else None
        model = finetune(model, ctx, self.finetune_epochs, lr=self.lr, distill=True) \
            if ranks else model
        report = PassReport(self.name, params=vars(self).copy(), metrics={
            "ranks": ranks, "params": sum(p.numel() for p in model.parameters()),
            "params_before": params_before})
        return model.eval(), report
