"""Folding: BatchNorm into the preceding conv/linear; consecutive linear layers merged.

Exact in eval mode: outputs equal the unfolded model's within float rounding.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

import torch
from torch import nn

from edgecomp.compress.base import DataContext, PassReport, register_pass
from edgecomp.vocab import Precision


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold every BatchNorm that directly follows a Conv2d/Linear inside a Sequential."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    folded = 0
    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            a, b = parent._modules[first], parent._modules[second]
            if isinstance(b, (nn.BatchNorm2d, nn.BatchNorm1d)) and \
                    isinstance(a, (nn.Conv2d, nn.Linear)) and not isinstance(b, nn.Identity):
                fuse = fuse_conv_bn_eval if isinstance(a, nn.Conv2d) else fuse_linear_bn_eval
                parent._modules[first] = fuse(a.eval(), b.eval())
                parent._modules[second] = nn.Identity()
                folded += 1
    return model, folded


def merge_linears(model: nn.Module) -> tuple[nn.Module, int]:
    """Merge Linear→Linear with nothing between: W = W2 W1, b = W2 b1 + b2."""
    merged = 0
    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = [n for n in parent._modules if not isinstance(parent._modules[n], nn.Identity)]
        for first, second in zip(names, names[1:]):
            a, b = parent._modules[first], parent._modules[second]
            if isinstance(a, nn.Linear) and isinstance(b, nn.Linear):
                with torch.no_grad():
                    weight = b.weight @ a.weight
                    bias = b.weight @ (a.bias if a.bias is not None else
                                       torch.zeros(a.out_features)) + \
                        (b.bias if b.bias is not None else 0)
                    fused = nn.Linear(a.in_features, b.out_features)
                    fused.weight.copy_(weight)
                    fused.bias.copy_(bias)
                parent._modules[first] = fused
                parent._modules[second] = nn.Identity()
                merged += 1
                break  # indices moved; the outer loop is cheap to rerun
    return model, merged


@register_pass
class Folding:
    """Fold BatchNorm into convolutions/linears and merge back-to-back linear layers."""

    name: ClassVar[str] = "fold"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, batchnorm: bool = True, linear: bool = True):
        self.batchnorm, self.linear = batchnorm, linear

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        model = copy.deepcopy(model).eval()
        folded = merged = 0
        if self.batchnorm:
            model, folded = fold_batchnorm(model)
        if self.linear:
            while True:
                model, count = merge_linears(model)
                merged += count
                if not count:
                    break
        report = PassReport(self.name, params=vars(self).copy(),
                            metrics={"batchnorms_folded": folded, "linears_merged": merged})
        return model, report
