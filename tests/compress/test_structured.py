"""Structured pruning physically removes channels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgecomp.compress.base import make_pass
from edgecomp.compress.structured import channel_counts
from edgecomp.model.train import evaluate


@pytest.mark.parametrize("importance", ["l1", "l2", "taylor", "hessian"])
def test_channels_are_removed_and_rounded(importance, trained_cnn, context):
    model, report = make_pass("prune.structured", {
        "ratio": 0.5, "importance": importance, "round_to": 8, "finetune_epochs": 0}) \
        .apply(trained_cnn, context(trained_cnn))
    before, after = channel_counts(trained_cnn), channel_counts(model)
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for name in convs:
        assert after[name] == before[name] // 2, (name, before[name], after[name])
        assert after[name] % 8 == 0
    assert after["classifier"] == 10  # the output layer keeps every class
    params_before, params_after = report.metrics["params"]
    assert params_after < 0.35 * params_before  # both sides of inner convs shrink
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_importance_criteria_choose_different_channels(trained_cnn, context):
    kept = {}
    for importance in ("l1", "taylor", "hessian"):
        model, _ = make_pass("prune.structured", {"ratio": 0.5, "importance": importance,
                                                  "finetune_epochs": 0}) \
            .apply(trained_cnn, context(trained_cnn))
        kept[importance] = model.features[0][0].weight.detach().clone()
    assert not torch.equal(kept["l1"], kept["taylor"])
    assert not torch.equal(kept["taylor"], kept["hessian"])


def test_distillation_recovers_accuracy(trained_cnn, context, digits):
    ctx = context(trained_cnn)
    raw, _ = make_pass("prune.structured", {"ratio": 0.5, "finetune_epochs": 0}) \
        .apply(trained_cnn, ctx)
    recovered, _ = make_pass("prune.structured", {"ratio": 0.5, "finetune_epochs": 4}) \
        .apply(trained_cnn, ctx)
    float_acc = evaluate(trained_cnn, digits[1])
    assert evaluate(recovered, digits[1]) > evaluate(raw, digits[1])
    assert evaluate(recovered, digits[1]) >= float_acc - 3.0


def test_residual_network_stays_consistent(context):
    """Torch-Pruning's dependency graph keeps both sides of a residual add the same width."""

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 32, 3, padding=1)
            self.body = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(32, 32, 3, padding=1))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

        def forward(self, x):
            x = torch.relu(self.stem(x))
            return self.head(torch.relu(x + self.body(x)))

    net = Residual().eval()
    model, _ = make_pass("prune.structured", {"ratio": 0.5, "finetune_epochs": 0}) \
        .apply(net, context(net))
    assert model.stem.out_channels == model.body[2].out_channels == 16
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
