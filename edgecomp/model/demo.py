"""The built-in demo: a small CNN trained once on scikit-learn's digits (then cached), and
the reference models the benchmarks use (8x8 digits, 10 classes)."""

from __future__ import annotations

import logging
import pickle
import zipfile
from typing import Any

import torch
from torch import nn

from edgecomp import paths
from edgecomp.atomic import atomic_path
from edgecomp.hashing import state_dict_sha256
from edgecomp.model.signature import InputSpec, forward_names
from edgecomp.model.source import ModelSource

log = logging.getLogger(__name__)


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


DEMO_NAME = "demo-cnn"
DEMO_INPUT_SHAPE = (1, 1, 8, 8)


def demo_model(*, progress: Any = None) -> ModelSource:
    """The built-in demo: a small CNN trained once on scikit-learn's digits, then cached."""
    from edgecomp.model.data import demo_digits

    model = DemoCNN()
    path = paths.cache_dir() / "demo" / "demo-cnn-v1.pt"
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("cached demo weights at %s are unreadable (%s); retraining", path, exc)
            path.unlink()
    if not path.is_file():
        from edgecomp.model.train import train_classifier

        model = train_classifier(model, demo_digits("train"), epochs=8, lr=3e-3, seed=0,
                                 progress=progress)
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
    model.eval()
    return ModelSource(name=DEMO_NAME, kind="demo", module=model,
                       inputs=(InputSpec(forward_names(model, 1)[0], DEMO_INPUT_SHAPE),),
                       sha256=state_dict_sha256(model.state_dict()), spec="demo")
