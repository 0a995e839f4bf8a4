"""Distillation trains a student on the teacher's soft targets."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from edgecomp.compress.base import make_pass
from edgecomp.model.train import distillation_loss, evaluate
from edgecomp.errors import InputError


def test_loss_is_hinton():
    student, teacher = torch.randn(4, 10), torch.randn(4, 10)
    labels = torch.tensor([1, 2, 3, 4])
    hard = distillation_loss(student, teacher, labels, temperature=3.0, alpha=0.0)
    torch.testing.assert_close(hard, torch.nn.functional.cross_entropy(student, labels))
    # A student equal to its teacher has zero soft loss.
    soft = distillation_loss(teacher, teacher, labels, temperature=3.0, alpha=1.0)
    assert float(soft) == pytest.approx(0.0, abs=1e-6)


def test_small_student_learns_from_teacher(trained_cnn, context, digits, tmp_path, monkeypatch):
    (tmp_path / "students_mod.py").write_text(textwrap.dedent("""
        from torch import nn
        def tiny():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    student, report = make_pass("distill", {"epochs": 20, "lr": 3e-3, "student": "students_mod:tiny"}) \
        .apply(trained_cnn, context(trained_cnn))
    assert report.metrics["student_params"] < report.metrics["teacher_params"] / 5
    assert evaluate(student, digits[1]) > 85.0
    sys.modules.pop("students_mod", None)


def test_student_that_cannot_be_built(trained_cnn, context):
    with pytest.raises(InputError, match="cannot import distill student"):
        make_pass("distill", {"student": "no_such_module:net"}).apply(trained_cnn,
                                                                     context(trained_cnn))
