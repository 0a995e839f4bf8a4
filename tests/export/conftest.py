"""A tiny real model and calibration data shared by the exporter tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgecomp.model.signature import InputSpec
from edgecomp.model.data import demo_digits
from edgecomp.export.base import ExportRequest, Precision


class TinyCNN(nn.Module):
    """Conv, ReLU, pooling and a classifier: the ops every format must handle, in 1 k params."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.classifier = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@pytest.fixture(scope="session")
def tiny_model():
    torch.manual_seed(0)
    return TinyCNN().eval()


@pytest.fixture(scope="session")
def tiny_calib():
    return demo_digits("train").take(32)


@pytest.fixture(scope="session")
def tiny_request(tiny_model, tiny_calib):
    """tiny_request(precision, out_dir, **changes): an ExportRequest for the tiny model."""

    def build(precision: Precision, out_dir, **changes) -> ExportRequest:
        options = dict(module=tiny_model, inputs=(InputSpec("x", (1, 1, 8, 8)),),
                       model_name="tiny", source_sha256="0" * 64, precision=precision,
                       out_dir=out_dir, calib=tiny_calib if precision == Precision.INT8 else None)
        options.update(changes)
        return ExportRequest(**options)

    return build
