"""Early exit: heads trained jointly, accuracy/cost per threshold, one model per exit."""

from __future__ import annotations

import torch

from edgecomp.compress.base import make_pass
from edgecomp.model.train import evaluate


def test_exits_trade_cost_for_accuracy(trained_cnn, context, digits):
    net, report = make_pass("early_exit", {"after": [0, 2], "epochs": 8}) \
        .apply(trained_cnn, context(trained_cnn))
    exits = net.exit_models()
    assert len(exits) == 3
    x = torch.from_numpy(digits[1].x[:8])
    with torch.no_grad():
        for exit_model in exits:
            assert exit_model(x).shape == (8, 10)
        torch.testing.assert_close(exits[-1](x), net(x))
    rows = report.metrics["thresholds"]
    costs = [row["avg_cost"] for row in rows]
    assert costs == sorted(costs)  # a higher threshold never costs less
    assert rows[-1]["avg_cost"] == 1.0  # threshold above 1: every sample runs to the end
    assert rows[0]["avg_cost"] < 0.7  # a low threshold stops most samples early
    assert rows[0]["exit_share"][0] > 0.3
    assert rows[-1]["accuracy"] >= evaluate(trained_cnn, digits[1]) - 3.0
    assert evaluate(exits[0], digits[1]) > 50.0  # the first head is a classifier on its own
