"""A slower artifact with the demo's identity: `demo_cnn` builds the demo CNN with twice its
channels, so what it exports is named "demo-cnn" like the built-in demo's artifacts."""

from __future__ import annotations

import torch

from edgecomp.models import DemoCNN
from edgecomp.sources import DEMO_INPUT_SHAPE

WIDTHS = (64, 128, 256)  # the demo's (32, 64, 128), doubled: about 4x the multiply-adds


def demo_cnn() -> DemoCNN:
    """The demo CNN with twice the channels (untrained: only its speed and size matter)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same weights, hence the same artifact, every time
        model = DemoCNN(widths=WIDTHS)
    model.input_shape = DEMO_INPUT_SHAPE
    return model
