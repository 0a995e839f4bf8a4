"""Depthwise-separable replacement: fewer parameters, accuracy recovered by distillation."""

from __future__ import annotations

from torch import nn

from edgecomp.compress.base import make_pass
from edgecomp.model.train import evaluate


def test_convolutions_become_depthwise_plus_pointwise(trained_cnn, context, digits):
    model, report = make_pass("separable", {"epochs": 8}).apply(trained_cnn, context(trained_cnn))
    assert report.metrics["replaced"] == ["features.1.0", "features.3.0"]
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 2 and all(m.groups == m.in_channels for m in depthwise)
    before, after = report.metrics["params"]
    assert after < 0.3 * before
    assert evaluate(model, digits[1]) > 85.0
