"""Binary weights: two values per output channel, sized at one bit per weight."""

from __future__ import annotations

import torch

from edgecomp.compress.base import make_pass
from edgecomp.model.train import evaluate


def test_inner_layers_are_binary(trained_mlp, context, digits):
    model, report = make_pass("binary", {"epochs": 4}).apply(trained_mlp, context(trained_mlp))
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inner = layers[1]
    for row in inner.weight.detach():
        values = torch.unique(row)
        assert len(values) <= 2 and torch.allclose(values.abs(), values.abs()[0].expand_as(values))
    assert len(torch.unique(layers[0].weight)) > 2  # first and last stay float
    assert report.metrics["binarized_layers"] == ["net.3"]
    weights = inner.weight.numel()
    assert report.metrics["size_bytes_1bit"] < sum(p.numel() for p in model.parameters()) * 4 \
        - weights * 4 + weights // 8 + 4 * inner.out_features + 1
    assert evaluate(model, digits[1]) > 85.0
