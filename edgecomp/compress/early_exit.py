"""Early exit: classifier heads after chosen blocks, trained jointly; stop when confident.

Exported as one artifact per exit (`EarlyExitNet.exit_models()`): a runtime runs exit 1,
and continues to the next artifact only when the top softmax probability is below the
threshold. The report gives accuracy and average cost (MACs executed) per threshold.
"""

from __future__ import annotations

import copy
from typing import Annotated, ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, StrictInt
from torch import nn

from edgecomp.compress.base import DataContext, Epochs, LearningRate, PassReport, register_pass
from edgecomp.model.macs import count_macs
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

Exits = Annotated[list[Annotated[StrictInt, Field(ge=0, le=1000)]], Field(min_length=1,
                                                                          max_length=16)]
# Confidence thresholds; one above 1 means "never exit early".
Thresholds = Annotated[list[Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]],
                       Field(min_length=1, max_length=64)]
Weight = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class EarlyExitNet(nn.Module):
    """A sequential backbone split into blocks, with a head after each chosen block."""

    def __init__(self, blocks: list[nn.Module], heads: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleList(heads)

    def all_exits(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block, head in zip(self.blocks, self.heads):
            x = block(x)
            outputs.append(head(x))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.all_exits(x)[-1]

    def exit_models(self) -> list[nn.Module]:
        """Exit k as a standalone model: blocks 0..k then head k (one artifact per exit)."""
        return [nn.Sequential(*self.blocks[:k + 1], self.heads[k]).eval()
                for k in range(len(self.blocks))]


def _split(model: nn.Module, after: list[int]) -> list[nn.Module]:
    """The model's layers cut into blocks after the layers `after` names; an index with no
    layer after it (where an exit would be the model's own output) is refused."""
    layers = list(model.features) + [model.classifier] if hasattr(model, "features") and \
        hasattr(model, "classifier") else list(model.children())
    if len(layers) == 1 and isinstance(layers[0], nn.Sequential):
        layers = list(layers[0])
    places = len(layers) - 1  # an exit goes after any layer but the last
    outside = [index for index in after if index >= places]
    if outside:
        have = (f"{places} places for an exit (after = 0 to {places - 1})" if places
                else "no place for an exit (it is not a sequence of layers)")
        raise InputError(f"early_exit: after = {after} names layer {outside[0]}, but this "
                         f"model has {have}; give indices the model has.")
    cuts = sorted(i + 1 for i in after) + [len(layers)]
    blocks, start = [], 0
    for cut in cuts:
        blocks.append(nn.Sequential(*layers[start:cut]))
        start = cut
    return blocks


def _head(channels_shape: torch.Size, classes: int) -> nn.Module:
    if len(channels_shape) == 4:
        # Early features are local: a global average would throw away where strokes are,
        # so the head keeps a coarse 2x2 grid (4x the channels) before its classifier.
        grid = min(2, channels_shape[2], channels_shape[3])
        return nn.Sequential(nn.AdaptiveAvgPool2d(grid), nn.Flatten(),
                             nn.Linear(channels_shape[1] * grid * grid, classes))
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(channels_shape[1:])), classes))


@register_pass
class EarlyExit:
    """Add exit heads after the given layer indices, train all exits jointly."""

    name: ClassVar[str] = "early_exit"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, after: Exits | None = None, thresholds: Thresholds | None = None,
                 epochs: Epochs = 8, lr: LearningRate = 5e-4, head_lr: LearningRate = 5e-3,
                 exit_weight: Weight = 0.5):
        self.after = after if after is not None else [0, 2]
        self.thresholds = thresholds or [0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01]
        self.epochs, self.lr, self.head_lr, self.exit_weight = epochs, lr, head_lr, exit_weight

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        if ctx.train is None or ctx.train.y is None:
            raise InputError("early_exit trains its heads: give labelled training data.")
        torch.manual_seed(ctx.seed)
        blocks = _split(copy.deepcopy(model), self.after)
        classes = int(ctx.train.y.max()) + 1
        heads, x = [], ctx.example_input
        with torch.no_grad():
            for block in blocks[:-1]:
                x = block(x)
                heads.append(_head(x.shape, classes))
        net = EarlyExitNet(blocks, heads + [nn.Identity()])
        data_x, data_y = torch.from_numpy(ctx.train.x), torch.from_numpy(ctx.train.y)
        # New heads learn fast; the trained backbone moves slowly so the last exit keeps
        # the original accuracy.
        optimizer = torch.optim.Adam([{"params": net.blocks.parameters(), "lr": self.lr},
                                      {"params": net.heads.parameters(), "lr": self.head_lr}])
        generator = torch.Generator().manual_seed(ctx.seed)
        for epoch in range(self.epochs):
            net.train()
            for index in torch.randperm(len(data_x), generator=generator).split(64):
                outputs = net.all_exits(data_x[index])
                loss = F.cross_entropy(outputs[-1], data_y[index]) + self.exit_weight * sum(
                    F.cross_entropy(o, data_y[index]) for o in outputs[:-1])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if ctx.progress:
                ctx.progress("training exits", epoch + 1, self.epochs)
        net.eval()
        evaluation = ctx.val if ctx.val is not None and ctx.val.y is not None else ctx.train
        report = PassReport(self.name, params=vars(self).copy(),
                            metrics={"thresholds": self.table(net, evaluation, ctx)})
        report.notes.append("exported as one artifact per exit; run the next one only when "
                            "the top probability is below the threshold")
        return net, report

    def table(self, net: EarlyExitNet, data, ctx: DataContext) -> list[dict]:
        """Accuracy and average MACs executed at each confidence threshold."""
        x, y = torch.from_numpy(data.x), data.y
        full = count_macs(net.exit_models()[-1], ctx.example_input).total
        # Cost of stopping at exit k: its blocks and head (earlier heads are a few
        # hundred MACs and left out).
        costs = [count_macs(m, ctx.example_input).total for m in net.exit_models()]
        with torch.no_grad():
            probs = [F.softmax(o, dim=1).numpy() for o in net.all_exits(x)]
        rows = []
        for threshold in self.thresholds:
            chosen = np.full(len(y), len(probs) - 1)
            for k in range(len(probs) - 2, -1, -1):
                confident = probs[k].max(axis=1) >= threshold
                chosen[confident] = k
            predictions = np.array([probs[k][i].argmax() for i, k in enumerate(chosen)])
            spent = np.array([costs[k] for k in chosen], dtype=float)
            rows.append({"threshold": threshold,
                         "accuracy": round(float((predictions == y).mean() * 100), 3),
                         "avg_cost": round(float(spent.mean() / full), 4),
                         "exit_share": [round(float((chosen == k).mean()), 3)
                                        for k in range(len(probs))]})
        return rows
