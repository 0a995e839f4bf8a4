"""N:M pruning keeps N of every M weights."""

from __future__ import annotations

import pytest
from torch import nn

from edgecomp.compress.base import make_pass


def test_two_four_pattern(trained_mlp, context):
    model, report = make_pass("prune.nm", {"finetune_epochs": 1}) \
        .apply(trained_mlp, context(trained_mlp))
    for module in (m for m in model.modules() if isinstance(m, nn.Linear)):
        groups = module.weight.detach().reshape(module.out_features, -1, 4)
        assert int((groups != 0).sum(dim=2).max()) <= 2
    assert all(s == pytest.approx(0.5, abs=0.01) for s in report.metrics["layer_sparsity"].values())
    assert any("Ampere" in note for note in report.notes)
