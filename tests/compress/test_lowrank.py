"""Low-rank factorization: thinner layers, exact at full rank, rank chosen by energy or ratio."""

from __future__ import annotations

import torch
from torch import nn

from edgecomp.compress.base import make_pass
from edgecomp.compress.lowrank import choose_rank, factorize
from edgecomp.model.train import evaluate


def test_full_rank_factorization_is_exact():
    torch.manual_seed(0)
    for layer, x in ((nn.Linear(20, 30), torch.randn(4, 20)),
                     (nn.Conv2d(6, 12, 3, padding=1), torch.randn(2, 6, 8, 8))):
        rank = min(layer.weight.shape[0], layer.weight[0].numel())
        torch.testing.assert_close(factorize(layer, rank)(x), layer(x), atol=1e-4, rtol=1e-4)


def test_rank_by_energy_and_ratio():
    s = torch.tensor([10.0, 5.0, 1.0, 0.1])
    assert choose_rank(s, energy=0.75, ratio=None, rows=4, cols=4) == 1
    assert choose_rank(s, energy=0.8, ratio=None, rows=4, cols=4) == 2
    assert choose_rank(s, energy=0.999, ratio=None, rows=4, cols=4) == 3
    assert choose_rank(s, energy=None, ratio=0.5, rows=100, cols=100) == 25


def test_model_gets_smaller_and_recovers(trained_mlp, context, digits):
    model, report = make_pass("lowrank", {"energy": 0.8, "finetune_epochs": 4}) \
        .apply(trained_mlp, context(trained_mlp))
    assert report.metrics["ranks"]  # at least one layer was factorized
    for name, (rank, full) in report.metrics["ranks"].items():
        assert rank < full, name
    assert report.metrics["params"] < report.metrics["params_before"]
    assert evaluate(model, digits[1]) >= evaluate(trained_mlp, digits[1]) - 3.0
