"""Built-in reference models for the demo and the benchmarks (8x8 digits, 10 classes)."""

from __future__ import annotations

from torch import nn


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution, BatchNorm, ReLU: the unit that channel pruning shrinks."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class DemoCNN(nn.Module):
    """A small CNN for (N, 1, 8, 8) digits, wide enough that pruning and int8 show real effects."""

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), classes: int = 10):
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(conv_block(1, c1), conv_block(c1, c2), nn.MaxPool2d(2),
                                      conv_block(c2, c3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c3, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class LeNet300100(nn.Module):
    """LeNet-300-100 (Han et al.'s Deep Compression MLP) sized for 8x8 digits: 64-300-100-10."""

    def __init__(self, inputs: int = 64, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(inputs, 300), nn.ReLU(),
                                 nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, classes))

    def forward(self, x):
        return self.net(x)
