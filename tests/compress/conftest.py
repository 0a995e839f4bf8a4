"""Small trained models and a data context shared by the compression-pass tests."""

from __future__ import annotations

import copy

import pytest
import torch

from edgecomp.compress.base import DataContext
from edgecomp.compress.recipe import load_all_passes
from edgecomp.model.train import train_classifier
from edgecomp.model.data import demo_digits
from edgecomp.model.demo import DemoCNN, LeNet300100

load_all_passes()


@pytest.fixture(scope="session")
def digits():
    return demo_digits("train"), demo_digits("val")


@pytest.fixture(scope="session")
def trained_mlp(digits):
    return train_classifier(LeNet300100(), digits[0], epochs=12, lr=1e-3, seed=0)


@pytest.fixture(scope="session")
def trained_cnn(digits):
    return train_classifier(DemoCNN(widths=(16, 32, 64)), digits[0], epochs=4, lr=3e-3, seed=0)


@pytest.fixture()
def context(digits, tmp_path):
    """A context whose teacher is set per test with `with_teacher`."""
    train, val = digits

    def with_teacher(model):
        return DataContext(example_input=torch.zeros(1, 1, 8, 8), train=train, val=val,
                           calib=train.take(128), teacher=copy.deepcopy(model).eval(),
                           out_dir=tmp_path, stem="test")

    return with_teacher
