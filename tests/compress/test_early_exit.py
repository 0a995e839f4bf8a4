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


def test_an_exit_after_a_layer_the_model_lacks_is_refused(trained_cnn, context):
    """`after = [99]` on a small model was dropped silently: one exit fewer, no word."""
    import pytest

    from edgecomp.errors import InputError

    places = len(trained_cnn.features)  # its layers and the classifier: after any but the last
    for after in ([99], [0, places]):
        with pytest.raises(InputError) as err:
            make_pass("early_exit", {"after": after, "epochs": 1}) \
                .apply(trained_cnn, context(trained_cnn))
        message = str(err.value)
        assert f"names layer {after[-1]}" in message
        assert f"this model has {places} places for an exit (after = 0 to {places - 1})" \
            in message
    net, _ = make_pass("early_exit", {"after": [places - 1], "epochs": 0}) \
        .apply(trained_cnn, context(trained_cnn))
    assert len(net.exit_models()) == 2  # the last place still takes an exit
