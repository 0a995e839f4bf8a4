"""Knowledge distillation: train a student on a teacher's softened outputs (Hinton et al.)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Annotated, ClassVar, Mapping

import torch
from pydantic import Field
from torch import nn

from edgecomp.compress.base import (DataContext, Epochs, Finite, LearningRate, PassReport,
                                    register_pass)
from edgecomp.errors import InputError
from edgecomp.vocab import Precision

Temperature = Annotated[float, Field(le=100, allow_inf_nan=False)]  # > 0 checked below


@register_pass
class Distillation:
    """Teacher → student with temperature and soft/hard loss weight.

    With `student` (package.module:function) a new, smaller model is trained from
    scratch; without it the current model is the student (the recovery step after
    pruning or quantization) and the original model is the teacher.
    """

    name: ClassVar[str] = "distill"
    must_come_last: ClassVar[bool] = False
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, epochs: Epochs = 10, temperature: Temperature = 4.0,
                 alpha: Finite = 0.7, lr: LearningRate = 1e-3, student: str | None = None):
        if temperature <= 0 or not 0.0 <= alpha <= 1.0:
            raise InputError("distill: temperature must be positive and alpha in [0, 1].")
        self.epochs, self.temperature, self.alpha = epochs, temperature, alpha
        self.lr, self.student = lr, student

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        from edgecomp.model.train import evaluate, train_classifier

        if ctx.train is None and ctx.train_fn is None:
            raise InputError("distill needs training data: give --data/--train.")
        teacher = ctx.teacher if ctx.teacher is not None else model
        torch.manual_seed(ctx.seed)  # the student's initial weights follow the seed too
        if self.student:
            from edgecomp.model.factory import import_callable

            student = import_callable(self.student, what="distill student")()
            if not isinstance(student, nn.Module):
                raise InputError(f"distill: student {self.student} did not return a "
                                 "torch.nn.Module.")
        else:
            student = copy.deepcopy(model)
        if ctx.train_fn is not None:  # the user's loop; ctx.teacher is there for it
            student = ctx.train_fn(student, replace(ctx, teacher=teacher), self.epochs)
        else:
            student = train_classifier(student, ctx.train, epochs=self.epochs, lr=self.lr,
                                       seed=ctx.seed, teacher=teacher,
                                       temperature=self.temperature, alpha=self.alpha,
                                       progress=ctx.progress)
        metrics = {"student_params": sum(p.numel() for p in student.parameters()),
                   "teacher_params": sum(p.numel() for p in teacher.parameters())}
        if ctx.val is not None and ctx.val.y is not None:
            metrics["student_accuracy"] = round(evaluate(student, ctx.val), 3)
            metrics["teacher_accuracy"] = round(evaluate(teacher, ctx.val), 3)
        return student, PassReport(self.name, params=vars(self).copy(), metrics=metrics)
