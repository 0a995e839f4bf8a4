"""The students tools/bench/compression distils its digits models into.

Factories (`digits_students:NAME`) for the `distill` pass's `student` option, which imports
them as a user's recipe would import its own; the script puts this folder on sys.path.
"""

from torch import nn

from edgecomp.model.demo import DemoCNN


def half_width_cnn() -> nn.Module:
    """The demo CNN at half its widths (16, 32, 64): a quarter of its parameters."""
    return DemoCNN(widths=(16, 32, 64))


def mlp_64_100_10() -> nn.Module:
    """A 64-100-10 MLP: LeNet-300-100 without its first hidden layer, a seventh its size."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 10))
