"""Folding is exact: the folded model computes what the unfolded one did."""

from __future__ import annotations

import torch
from torch import nn

from edgecomp.compress.base import make_pass


def test_batchnorm_folding_is_exact(trained_cnn, context, digits):
    model, report = make_pass("fold", {}).apply(trained_cnn, context(trained_cnn))
    assert report.metrics["batchnorms_folded"] == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.from_numpy(digits[1].x[:64])
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained_cnn(x), atol=1e-4, rtol=1e-4)


def test_linear_layers_merge(context):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.Linear(40, 30), nn.Linear(30, 10),
                        nn.ReLU(), nn.Linear(10, 10)).eval()
    model, report = make_pass("fold", {}).apply(net, context(net))
    assert report.metrics["linears_merged"] == 2
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 2
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), atol=1e-5, rtol=1e-5)
