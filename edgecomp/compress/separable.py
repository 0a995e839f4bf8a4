"""Depthwise-separable replacement of standard convolutions, recovered by distillation."""

from __future__ import annotations

import copy
from typing import Annotated, ClassVar, Mapping

from pydantic import Field, StrictInt
from torch import nn

from edgecomp.compress.base import (DataContext, Epochs, LearningRate, PassReport, register_pass,
                                     finetune)
from edgecomp.vocab import Precision

Channels = Annotated[StrictInt, Field(ge=1, le=2**16)]


def separable(conv: nn.Conv2d) -> nn.Sequential:
    """k×k depthwise (per input channel) then 1×1 pointwise: ~k² fewer multiplies."""
    depthwise = nn.Conv2d(conv.in_channels, conv.in_channels, conv.kernel_size, conv.stride,
                          conv.padding, conv.dilation, groups=conv.in_channels, bias=False)
    pointwise = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None)
    return nn.Sequential(depthwise, pointwise)


@register_pass
class DepthwiseSeparable:
    """Replace k×k convolutions (k > 1, more than `min_in` input channels) and distill."""

    name: ClassVar[str] = "separable"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, min_in: Channels = 8, epochs: Epochs = 10, lr: LearningRate = 1e-3):
        self.min_in, self.epochs, self.lr = min_in, epochs, lr

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        model = copy.deepcopy(model)
        before = sum(p.numel() for p in model.parameters())
        replaced = []
        for parent_name, parent in list(model.named_modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Conv2d) and child.groups == 1 and \
                        child.in_channels >= self.min_in and max(child.kernel_size) > 1:
                    setattr(parent, name, separable(child))
                    replaced.append(f"{parent_name}.{name}".strip("."))
        model = finetune(model, ctx, self.epochs, lr=self.lr, distill=True)
        report = PassReport(self.name, params=vars(self).copy(), metrics={
            "replaced": replaced, "params": [before, sum(p.numel() for p in model.parameters())]})
        return model.eval(), report
