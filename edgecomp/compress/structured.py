"""Structured pruning: remove whole channels/neurons across dependent layers (Torch-Pruning).

Torch-Pruning's dependency graph keeps residual adds, concatenations and depthwise
convolutions consistent, so the pruned network is physically smaller and dense runtimes
get faster. Channel counts are rounded to the target's kernel tile (FIELD.md:
odd counts can make a pruned model slower). N:M (2:4) sparsity is in nm.py.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

import torch
from torch import nn

from edgecomp.compress.base import (ChannelMultiple, DataContext, Epochs, Finite, LearningRate,
                                    PassReport, Steps, register_pass, finetune)
from edgecomp.model.macs import count_macs
from edgecomp.compress.prune import prunable_layers
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

IMPORTANCE = ("l1", "l2", "taylor", "hessian")


def channel_counts(model: nn.Module) -> dict[str, int]:
    return {name: (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
            for name, m in prunable_layers(model)}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _importance(kind: str):
    import torch_pruning as tp

    return {"l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
            "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
            "taylor": tp.importance.GroupTaylorImportance,
            "hessian": tp.importance.GroupHessianImportance}[kind]()


def _gradients(model: nn.Module, ctx: DataContext, kind: str, importance,
               batches: int = 8) -> None:
    """Gradients for Taylor (batch loss) or the Hessian-diagonal estimate (OBD-style).

    The Hessian diagonal is approximated by the empirical Fisher: squared per-sample
    gradients, accumulated in Torch-Pruning's scorer one sample at a time.
    """
    if ctx.train is None or ctx.train.y is None:
        raise InputError(f"prune.structured importance={kind} needs labelled training data "
                         "for gradients; use l1/l2 or give --data.")
    import torch.nn.functional as F

    x = torch.from_numpy(ctx.train.x[:batches * 32])
    y = torch.from_numpy(ctx.train.y[:batches * 32])
    model.zero_grad()
    if kind == "hessian":
        importance.zero_grad()
        samples = min(len(x), 128)
        losses = F.cross_entropy(model(x[:samples]), y[:samples], reduction="none")
        for index, loss in enumerate(losses):
            model.zero_grad()
            loss.backward(retain_graph=index < len(losses) - 1)
            importance.accumulate_grad(model)
        return
    for start in range(0, len(x), 32):
        loss = F.cross_entropy(model(x[start:start + 32]), y[start:start + 32])
        loss.backward()


@register_pass
class StructuredPruning:
    """Channel pruning with L1/L2/Taylor/Hessian importance, rounded channel counts."""

    name: ClassVar[str] = "prune.structured"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    # Filled in from the board's plan where a recipe leaves them open.
    plan_options: ClassVar[Mapping[str, str]] = {"round_to": "channel_multiple"}

    def __init__(self, ratio: Finite = 0.5, importance: str = "l1",
                 round_to: ChannelMultiple = 8, iterative_steps: Steps = 1,
                 finetune_epochs: Epochs = 8, lr: LearningRate = 1e-3, distill: bool = True):
        if not 0.0 < ratio < 1.0:
            raise InputError(f"prune.structured: ratio must be between 0 and 1, got {ratio}.")
        if importance not in IMPORTANCE:
            raise InputError(f"prune.structured: importance is one of {', '.join(IMPORTANCE)}.")
        self.ratio, self.importance, self.round_to = ratio, importance, round_to
        self.iterative_steps, self.finetune_epochs = iterative_steps, finetune_epochs
        self.lr, self.distill = lr, distill

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        import torch_pruning as tp

        torch.manual_seed(ctx.seed)
        model = copy.deepcopy(model).eval()
        before = channel_counts(model)
        macs_before, params_before = count_macs(model, ctx.example_input).total, _params(model)
        outputs = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1:]
        importance = _importance(self.importance)
        pruner = tp.pruner.MetaPruner(
            model, ctx.example_input, importance=importance,
            pruning_ratio=self.ratio, iterative_steps=self.iterative_steps,
            ignored_layers=outputs, round_to=self.round_to)
        for _ in range(self.iterative_steps):
            if self.importance in ("taylor", "hessian"):
                _gradients(model, ctx, self.importance, importance)
            pruner.step()
            model.zero_grad()
        # The teacher is the unpruned model (ctx.teacher); distillation recovers accuracy.
        model = finetune(model, ctx, self.finetune_epochs, lr=self.lr, distill=self.distill)
        macs_after, params_after = count_macs(model, ctx.example_input).total, _params(model)
        after = channel_counts(model)
        report = PassReport(self.name, params=vars(self).copy(), metrics={
            "channels": {name: [before[name], after[name]] for name in before},
            "params": [int(params_before), int(params_after)],
            "macs": [int(macs_before), int(macs_after)]})
        report.notes.append("MACs are not latency: the benchmark measures the speedup")
        return model.eval(), report
