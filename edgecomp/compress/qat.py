"""Quantization-aware training: fine-tune under simulated int8, then export like PTQ.

BatchNorm is folded first (exporters fold it too, so the trained weights are the ones
exported). During fine-tuning every conv/linear weight is fake-quantized per output
channel, symmetric int8 (what the LiteRT and ONNX exporters use), and activations
per tensor with moving-average ranges; gradients pass straight through the rounding.
Afterwards the weights are left on their int8 grid, so the exporters' per-channel
min/max quantization reproduces them exactly and their calibration sets activations.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecomp.compress.base import (DataContext, Epochs, LearningRate, PassReport, register_pass,
                                     finetune)
from edgecomp.compress.fold import fold_batchnorm
from edgecomp.compress.prune import prunable_layers
from edgecomp.vocab import Precision


class FakeQuantWeight(nn.Module):
    """Per-output-channel symmetric int8 fake quantization (straight-through gradients)."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        flat = weight.detach().reshape(weight.shape[0], -1)
        scale = (flat.abs().amax(dim=1) / 127.0).clamp(min=1e-8)
        zero = torch.zeros(weight.shape[0], dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)


class ActivationObserver:
    """Moving-average min/max and per-tensor asymmetric int8 fake quantization of an output."""

    def __init__(self, momentum: float = 0.1):
        self.low = self.high = None
        self.momentum = momentum

    def __call__(self, module, inputs, output):
        if module.training:
            low, high = float(output.detach().min()), float(output.detach().max())
            if self.low is None:
                self.low, self.high = low, high
            else:
                self.low += self.momentum * (low - self.low)
                self.high += self.momentum * (high - self.high)
        low, high = min(self.low, 0.0), max(self.high, 0.0)
        scale = max((high - low) / 255.0, 1e-8)
        zero = int(round(-128 - low / scale))
        return torch.fake_quantize_per_tensor_affine(output, scale, zero, -128, 127)


@register_pass
class QuantizationAwareTraining:
    """Fine-tune with fake int8 weights and activations; export to int8 LiteRT/ONNX."""

    name: ClassVar[str] = "qat"
    must_come_last: ClassVar[bool] = True  # weights sit on the int8 grid the export uses
    export_precision: ClassVar[Precision | None] = Precision.INT8
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, epochs: Epochs = 3, lr: LearningRate = 2e-4, distill: bool = True):
        self.epochs, self.lr, self.distill = epochs, lr, distill

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        torch.manual_seed(ctx.seed)
        model, folded = fold_batchnorm(copy.deepcopy(model).eval())
        layers = prunable_layers(model)
        hooks = []
        for _, module in layers:
            parametrize.register_parametrization(module, "weight", FakeQuantWeight())
            hooks.append(module.register_forward_hook(ActivationObserver()))
        for module in model.modules():
            if isinstance(module, (nn.ReLU, nn.ReLU6)):
                hooks.append(module.register_forward_hook(ActivationObserver()))
        try:
            model = finetune(model, ctx, self.epochs, lr=self.lr, distill=self.distill)
        finally:
            for hook in hooks:
                hook.remove()
        for _, module in layers:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        report = PassReport(self.name, params=vars(self).copy(), metrics={
            "export_precision": self.export_precision.value, "batchnorms_folded": folded,
            "fake_quantized_layers": len(layers)})
        report.notes.append("weights are left on their per-channel int8 grid; export with "
                            "--precision int8 (the recipe's [export] does this)")
        return model.eval(), report
