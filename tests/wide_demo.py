"""Slower releases of the demo, each exported or deployed with `--name demo-cnn` so that its
artifacts carry the built-in demo's name (other content under the same name, as a new release
of a model is):

- `demo_cnn` builds the demo CNN with twice its channels (about 4x the multiply-adds, and
  larger files);
- `repeated_cnn` is the demo CNN itself run on a batch of `REPEATS` differently scaled
  copies of the input: the same weights, hence files of the same size, with several times
  the compute — a regression only latency shows."""

from __future__ import annotations

import torch
from torch import nn

from edgecomp.model.demo import DemoCNN
from edgecomp.model.demo import DEMO_INPUT_SHAPE

WIDTHS = (64, 128, 256)  # the demo's (32, 64, 128), doubled: about 4x the multiply-adds
REPEATS = 4


def demo_cnn() -> DemoCNN:
    """The demo CNN with twice the channels (untrained: only its speed and size matter)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same weights, hence the same artifact, every time
        model = DemoCNN(widths=WIDTHS)
    model.input_shape = DEMO_INPUT_SHAPE
    return model


class RepeatedCNN(nn.Module):
    """The demo CNN run on a batch of `REPEATS` scaled copies of the input, logits averaged.
    The scales differ so that no exporter or runtime can merge the copies into one; one
    batch (rather than a layer called several times) keeps each weight in one op, so that
    int8 exports quantize it as they do the demo's."""

    def __init__(self):
        super().__init__()
        self.net = DemoCNN()
        self.register_buffer("scales", 1.0 + 0.05 * torch.arange(REPEATS).view(REPEATS, 1, 1, 1))

    def forward(self, x):
        return self.net(x * self.scales).mean(dim=0, keepdim=True)


def repeated_cnn() -> RepeatedCNN:
    """The demo CNN run on four copies of its input (untrained: only its speed and size matter)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = RepeatedCNN()
    model.input_shape = DEMO_INPUT_SHAPE
    return model
