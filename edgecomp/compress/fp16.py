"""fp16: round weights to half precision; a recipe's `[export] precision = "fp16"` exports it."""

from __future__ import annotations

import copy
from typing import ClassVar, Mapping

import torch
from torch import nn

from edgecomp.compress.base import DataContext, PassReport, register_pass
from edgecomp.vocab import Precision


@register_pass
class HalfPrecision:
    """Round weights through float16 so evaluation shows fp16's effect; export as fp16."""

    name: ClassVar[str] = "fp16"
    must_come_last: ClassVar[bool] = True  # weights rounded for the fp16 export
    export_precision: ClassVar[Precision | None] = Precision.FP16
    plan_options: ClassVar[Mapping[str, str]] = {}

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        model = copy.deepcopy(model)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(parameter.half().float())
        params = sum(p.numel() for p in model.parameters())
        return model.eval(), PassReport(self.name, params={}, metrics={
            "export_precision": self.export_precision.value, "weight_bytes": params * 2})
