"""Multiply-accumulates of a model on one input: the one counter passes and model facts use.

Layers are recognised by type at any depth, not by being leaves: a convolution that owns
a child module (EfficientNet-Lite's "same"-padding convs keep a padding child) is still a
convolution. Counted: convolutions (any dimension, transposed too) and linear layers,
which hold nearly all the arithmetic of the models edgecomp targets. Torch-Pruning's
counter is not used: it counts elementwise ops as MACs too and ties our numbers to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


@dataclass(frozen=True)
class MacCount:
    """MACs split into convolutions and the rest (linear layers)."""

    conv: int
    other: int

    @property
    def total(self) -> int:
        return self.conv + self.other

    @property
    def conv_share(self) -> float | None:
        return self.conv / self.total if self.total else None


def layer_macs(module: nn.Module, inputs: tuple, output) -> tuple[str, int] | None:
    """("conv" | "other", MACs) of one call of `module`, or None when it is not counted.

    For a forward hook: `inputs` and `output` are what the hook receives.
    """
    if isinstance(module, _ConvNd) and isinstance(output, torch.Tensor):
        per_position = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        if module.transposed:  # every input position scatters into a kernel-sized window
            first = inputs[0] if inputs else None
            if not isinstance(first, torch.Tensor):
                return None
            return "conv", first.numel() * (module.out_channels // module.groups) * \
                math.prod(module.kernel_size)
        return "conv", output.numel() * per_position
    if isinstance(module, nn.Linear) and isinstance(output, torch.Tensor):
        return "other", (output.numel() // module.out_features) * \
            module.in_features * module.out_features
    return None


def count_macs(model: nn.Module, example_input: torch.Tensor) -> MacCount:
    """MACs of one forward pass of `model` on `example_input`, in eval mode."""
    totals = {"conv": 0, "other": 0}

    def hook(module, inputs, output):
        counted = layer_macs(module, inputs, output)
        if counted is not None:
            totals[counted[0]] += counted[1]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (_ConvNd, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return MacCount(conv=totals["conv"], other=totals["other"])
