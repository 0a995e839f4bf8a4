"""The shipped profiles and the demo CNN's facts, shared by the planner's tests."""

from __future__ import annotations

import pytest
import torch

from edgecomp.hardware.profiles import load_profiles
from edgecomp.model.demo import DemoCNN
from edgecomp.model.facts import model_facts


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


@pytest.fixture(scope="module")
def cnn():
    return model_facts(DemoCNN(), torch.zeros(1, 1, 8, 8), name="cnn")
