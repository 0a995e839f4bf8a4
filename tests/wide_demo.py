"""A slower release of the demo: `demo_cnn` builds the demo CNN with twice its channels;
exported or deployed with `--name demo-cnn`, its artifacts carry the built-in demo's name
(other content under the same name, as a new release of a model is)."""

from __future__ import annotations

import torch

from edgecomp.model.demo import DemoCNN
from edgecomp.model.demo import DEMO_INPUT_SHAPE

WIDTHS = (64, 128, 256)  # the demo's (32, 64, 128), doubled: about 4x the multiply-adds


def demo_cnn() -> DemoCNN:
    """The demo CNN with twice the channels (untrained: only its speed and size matter)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same weights, hence the same artifact, every time
        model = DemoCNN(widths=WIDTHS)
    model.input_shape = DEMO_INPUT_SHAPE
    return model
