"""Magnitude pruning reaches the sparsity asked for, globally, per layer and gradually."""

from __future__ import annotations

import pytest

from edgecomp.compress.base import make_pass
from edgecomp.compress.prune import layer_sparsity, total_sparsity
from edgecomp.model.train import evaluate
from edgecomp.errors import InputError


def test_global_oneshot_reaches_target_and_keeps_accuracy(trained_mlp, context, digits):
    model, report = make_pass("prune.magnitude", {"sparsity": 0.8, "finetune_epochs": 3}) \
        .apply(trained_mlp, context(trained_mlp))
    assert total_sparsity(model) == pytest.approx(0.8, abs=0.01)
    assert report.metrics["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert evaluate(model, digits[1]) >= evaluate(trained_mlp, digits[1]) - 3.0
    assert any("no speedup" in note for note in report.notes)
    # The masks are gone: plain weights with zeros, nothing left for an exporter to trip on.
    assert not any(name.endswith("_orig") for name, _ in model.named_parameters())


def test_per_layer_scope_prunes_every_layer_equally(trained_mlp, context):
    model, _ = make_pass("prune.magnitude", {"sparsity": 0.6, "scope": "layer",
                                             "finetune_epochs": 0}) \
        .apply(trained_mlp, context(trained_mlp))
    for name, sparsity in layer_sparsity(model).items():
        assert sparsity == pytest.approx(0.6, abs=0.02), name


def test_gradual_schedule_follows_zhu_gupta(trained_mlp, context):
    pruning = make_pass("prune.magnitude", {"sparsity": 0.9, "schedule": "gradual", "steps": 3,
                                            "finetune_epochs": 1})
    targets = pruning.targets()
    assert targets[-1] == pytest.approx(0.9) and targets == sorted(targets)
    model, _ = pruning.apply(trained_mlp, context(trained_mlp))
    assert total_sparsity(model) == pytest.approx(0.9, abs=0.01)


def test_bad_sparsity_is_refused():
    with pytest.raises(InputError, match="sparsity must be between 0 and 1"):
        make_pass("prune.magnitude", {"sparsity": 1.5})


def test_finetuning_without_data_says_what_to_do(trained_mlp, context):
    ctx = context(trained_mlp)
    ctx.train = None
    with pytest.raises(InputError, match="give training data"):
        make_pass("prune.magnitude", {"sparsity": 0.5}).apply(trained_mlp, ctx)
