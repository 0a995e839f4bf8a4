"""Every registered pass keeps the shared contract: a new model, a report, input untouched."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from edgecomp.compress.base import PASSES, PassReport, make_pass
from edgecomp.model.train import evaluate
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

# Short training so the contract runs fast; each technique's own test checks its effect.
QUICK = {"prune.magnitude": {"finetune_epochs": 1}, "prune.structured": {"finetune_epochs": 1},
         "prune.nm": {"finetune_epochs": 1}, "distill": {"epochs": 1}, "qat": {"epochs": 1},
         "binary": {"epochs": 1}, "cluster": {"finetune_epochs": 1},
         "lowrank": {"finetune_epochs": 1}, "separable": {"epochs": 1},
         "early_exit": {"epochs": 1}}


@pytest.mark.parametrize("name", sorted(PASSES))
def test_pass_contract(name, trained_cnn, context, digits):
    model = copy.deepcopy(trained_cnn)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out, report = make_pass(name, QUICK.get(name, {})).apply(model, context(model))
    assert isinstance(report, PassReport) and report.name == name
    assert isinstance(out, torch.nn.Module) and not out.training
    # The caller's model is not changed behind its back.
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"{name} changed the input model's {key}"
    with torch.no_grad():
        assert out(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert evaluate(out, digits[1]) > 10.0  # a working classifier, not noise
    # Deterministic given the seed.
    again, _ = make_pass(name, QUICK.get(name, {})).apply(copy.deepcopy(trained_cnn),
                                                          context(trained_cnn))
    x = torch.from_numpy(digits[1].x[:16])
    with torch.no_grad():
        torch.testing.assert_close(out(x), again(x))


@pytest.mark.parametrize("name", sorted(PASSES))
def test_unknown_option_is_one_sentence(name):
    with pytest.raises(InputError, match=f"pass '{name}': bad options"):
        make_pass(name, {"no_such_option": 1})


def test_unknown_pass_names_the_choices():
    with pytest.raises(InputError, match="unknown compression pass 'prune.magic'.*prune.magnitude"):
        make_pass("prune.magic", {})


@pytest.mark.parametrize("name", sorted(PASSES))
def test_pass_declares_its_facts(name):
    cls = PASSES[name]
    assert type(cls.__dict__.get("must_come_last")) is bool, \
        f"{name} must declare must_come_last: ClassVar[bool]"
    assert "export_precision" in cls.__dict__, f"{name} must declare export_precision"
    assert cls.export_precision is None or isinstance(cls.export_precision, Precision)


def test_passes_tied_to_the_export_say_so():
    last = {name for name, cls in PASSES.items() if cls.must_come_last}
    assert {"qat", "fp16", "binary", "cluster"} <= last
    assert not last & {"prune.magnitude", "prune.structured", "prune.nm", "distill", "fold"}
    assert PASSES["qat"].export_precision == Precision.INT8
    assert PASSES["fp16"].export_precision == Precision.FP16


@pytest.mark.parametrize("name", sorted(PASSES))
def test_the_plan_decisions_a_pass_takes_are_real_options_and_decisions(name):
    from edgecomp.compress.base import options_schema
    from edgecomp.hardware.plan import DECISIONS

    cls = PASSES[name]
    schema = options_schema(cls)
    options = {f.name for f in dataclasses.fields(schema)} if schema is not None else set()
    for option, decision in cls.plan_options.items():
        assert option in options, f"{name}: the plan fills {option!r}, which it does not take"
        assert decision in DECISIONS, f"{name}: {decision!r} is no plan decision"


def test_the_generic_prune_and_structured_pruning_follow_the_plan():
    assert PASSES["prune"].plan_options == {"kind": "pruning", "round_to": "channel_multiple"}
    assert PASSES["prune.structured"].plan_options == {"round_to": "channel_multiple"}
