"""Binary weights: sign(w) times a per-output-channel scale, trained with a straight-through
estimator (XNOR-Net / BinaryConnect). Sizes count 1 bit per binarized weight."""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecomp.compress.base import (DataContext, Epochs, LearningRate, PassReport, register_pass,
                                     finetune)
from edgecomp.compress.prune import prunable_layers
from edgecomp.vocab import Precision


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight):
        ctx.save_for_backward(weight)
        return torch.where(weight >= 0, torch.ones_like(weight), -torch.ones_like(weight))

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        return grad * (weight.abs() <= 1).to(grad.dtype)  # straight through, clipped


class BinaryWeight(nn.Module):
    """alpha_c * sign(w) with alpha_c = mean |w| of output channel c."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        alpha = weight.abs().reshape(weight.shape[0], -1).mean(dim=1)
        shape = (-1,) + (1,) * (weight.dim() - 1)
        return _SignSTE.apply(weight) * alpha.reshape(shape)


@register_pass
class BinaryWeights:
    """Binarize conv/linear weights (first and last layer kept float by default)."""

    name: ClassVar[str] = "binary"
    must_come_last: ClassVar[bool] = True  # binarized weights must not be trained further
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, epochs: Epochs = 10, lr: LearningRate = 1e-3,
                 keep_first_last: bool = True, distill: bool = True):
        self.epochs, self.lr = epochs, lr
        self.keep_first_last, self.distill = keep_first_last, distill

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        torch.manual_seed(ctx.seed)
        model = copy.deepcopy(model)
        layers = prunable_layers(model)
        chosen = layers[1:-1] if self.keep_first_last and len(layers) > 2 else layers
        for _, module in chosen:
            parametrize.register_parametrization(module, "weight", BinaryWeight())
        model = finetune(model, ctx, self.epochs, lr=self.lr, distill=self.distill)
        for _, module in chosen:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        binary_bits = sum(m.weight.numel() + 32 * m.weight.shape[0] for _, m in chosen)
        chosen_ids = {id(m) for _, m in chosen}
        other_bytes = sum(p.numel() * 4 for module in model.modules()
                          for name, p in module.named_parameters(recurse=False)
                          if not (id(module) in chosen_ids and name == "weight"))
        report = PassReport(self.name, params=vars(self).copy(), metrics={
            "binarized_layers": [name for name, _ in chosen],
            "size_bytes_1bit": (binary_bits + 7) // 8 + other_bytes})
        report.notes.append("runtimes store the ±alpha weights as floats; the 1-bit size is "
                            "what a bit-packed kernel would need")
        return model.eval(), report
