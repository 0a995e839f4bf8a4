"""QAT leaves weights on the int8 grid and exports to int8 LiteRT at least as well as PTQ."""

from __future__ import annotations

import torch
from torch import nn

from edgecomp.compress.base import make_pass
from edgecomp.model.train import evaluate


def test_weights_land_on_per_channel_int8_grid(trained_cnn, context, digits):
    model, report = make_pass("qat", {"epochs": 1}).apply(trained_cnn, context(trained_cnn))
    assert report.metrics["batchnorms_folded"] == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for module in (m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))):
        w = module.weight.detach().reshape(module.weight.shape[0], -1)
        scale = w.abs().amax(dim=1, keepdim=True) / 127.0
        steps = w / scale
        torch.testing.assert_close(steps, steps.round(), atol=1e-3, rtol=0)
    assert evaluate(model, digits[1]) >= evaluate(trained_cnn, digits[1]) - 2.0


def test_fp16_rounds_weights(trained_mlp, context):
    model, report = make_pass("fp16", {}).apply(trained_mlp, context(trained_mlp))
    for p in model.parameters():
        torch.testing.assert_close(p, p.half().float(), atol=0, rtol=0)
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(),
                                                      trained_mlp.parameters()))
    assert report.metrics["export_precision"] == "fp16"
