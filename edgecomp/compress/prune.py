"""Magnitude (unstructured) pruning: zero the smallest weights, globally or per layer.

Honest note: dense runtimes (XNNPACK, onnxruntime CPU) run zeros at full cost, so this
pass shrinks the compressed file (Huffman archive, gzip) but not the latency.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from edgecomp.compress.base import (DataContext, Epochs, Finite, LearningRate, PassReport, Steps,
                                    register_pass, finetune)
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

PRUNABLE = (nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Share of exactly-zero weights per prunable layer."""
    return {name: round(float((m.weight == 0).float().mean()), 4)
            for name, m in prunable_layers(model)}


def total_sparsity(model: nn.Module) -> float:
    zeros = sum(int((m.weight == 0).sum()) for _, m in prunable_layers(model))
    total = sum(m.weight.numel() for _, m in prunable_layers(model))
    return zeros / total if total else 0.0


@register_pass
class MagnitudePruning:
    """Unstructured magnitude pruning, one-shot or gradual (Zhu & Gupta schedule)."""

    name: ClassVar[str] = "prune.magnitude"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, sparsity: Finite = 0.8, scope: str = "global",
                 schedule: str = "oneshot", steps: Steps = 3, finetune_epochs: Epochs = 2,
                 lr: LearningRate = 1e-3, distill: bool = False):
        if not 0.0 < sparsity < 1.0:
            raise InputError(f"prune.magnitude: sparsity must be between 0 and 1, got {sparsity}.")
        if scope not in ("global", "layer") or schedule not in ("oneshot", "gradual"):
            raise InputError("prune.magnitude: scope is global or layer; schedule is oneshot or "
                             "gradual.")
        self.sparsity, self.scope, self.schedule = sparsity, scope, schedule
        self.steps = steps if schedule == "gradual" else 1
        self.finetune_epochs, self.lr, self.distill = finetune_epochs, lr, distill

    def targets(self) -> list[float]:
        """Sparsity after each step: s_t = s (1 - (1 - t/n)^3) (Zhu & Gupta, 2017)."""
        n = self.steps
        return [self.sparsity * (1 - (1 - step / n) ** 3) for step in range(1, n + 1)]

    def masks(self, layers: list[tuple[str, nn.Module]], target: float) -> list[torch.Tensor]:
        """Keep-masks reaching `target` sparsity over all weights (already-zero ones included)."""
        if self.scope == "global":
            magnitudes = torch.cat([m.weight.detach().abs().flatten() for _, m in layers])
            cut = int(target * magnitudes.numel())
            threshold = magnitudes.kthvalue(cut).values if cut > 0 else magnitudes.min() - 1
            return [m.weight.detach().abs() > threshold for _, m in layers]
        masks = []
        for _, module in layers:
            magnitudes = module.weight.detach().abs().flatten()
            cut = int(target * magnitudes.numel())
            threshold = magnitudes.kthvalue(cut).values if cut > 0 else magnitudes.min() - 1
            masks.append(module.weight.detach().abs() > threshold)
        return masks

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        torch.manual_seed(ctx.seed)
        model = copy.deepcopy(model)
        layers = prunable_layers(model)
        for target in self.targets():
            for (_, module), mask in zip(layers, self.masks(layers, target)):
                # The mask is a forward pre-hook: zeros stay zero while fine-tuning.
                torch_prune.custom_from_mask(module, "weight", mask)
            model = finetune(model, ctx, self.finetune_epochs, lr=self.lr, distill=self.distill)
            for _, module in layers:
                torch_prune.remove(module, "weight")
        model.eval()
        report = PassReport(self.name, params=vars(self).copy(),
                            metrics={"sparsity": round(total_sparsity(model), 4),
                                     "layer_sparsity": layer_sparsity(model)})
        report.notes.append("unstructured zeros shrink the compressed file only; dense CPU "
                            "runtimes compute them at full cost, so expect no speedup")
        return model, report
