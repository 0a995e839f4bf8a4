"""One MAC counter: convolutions and linear layers found by type, at any depth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecomp.model.macs import count_macs
from edgecomp.model.facts import model_facts


class Conv2dSame(nn.Conv2d):
    """A TF-style "same" conv that owns its padding module (as in EfficientNet-Lite ports)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pad = nn.ZeroPad2d(1)

    def forward(self, x):
        return F.conv2d(self.pad(x), self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)


def test_plain_conv_and_linear():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 10))
    macs = count_macs(model, torch.zeros(1, 3, 4, 4))
    assert macs.conv == 8 * 4 * 4 * 3 * 3 * 3
    assert macs.other == 128 * 10
    assert macs.total == macs.conv + macs.other


def test_depthwise_and_transposed():
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert count_macs(depthwise, torch.zeros(1, 8, 4, 4)).conv == 8 * 4 * 4 * 9
    up = nn.ConvTranspose2d(4, 2, 2, stride=2)
    assert count_macs(up, torch.zeros(1, 4, 3, 3)).conv == 4 * 3 * 3 * 2 * 2 * 2


def test_conv_with_a_padding_child_is_counted():
    same = nn.Sequential(Conv2dSame(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 10))
    x = torch.zeros(1, 3, 4, 4)
    assert count_macs(same, x) == count_macs(plain, x)
    facts = model_facts(same, x, name="same")
    assert facts.macs == count_macs(plain, x).total
    assert "conv2d" in facts.op_types and "pad" in facts.op_types
    assert not any(op.startswith("other:") for op in facts.op_types)
    assert facts.conv_share == count_macs(plain, x).conv_share > 0.5


def test_counting_leaves_the_training_mode_alone():
    model = nn.Linear(4, 2).train()
    count_macs(model, torch.zeros(1, 4))
    assert model.training
