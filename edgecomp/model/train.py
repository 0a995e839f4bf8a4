"""The built-in classification loop (with optional distillation from a teacher), and model
outputs: the demo is trained with it, and compression passes fine-tune with it."""

from __future__ import annotations

import random
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecomp.model.data import Dataset
from edgecomp.errors import InputError


def seed_everything(seed: int) -> None:
    """Make a training run repeatable: same seed, same weights."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, *, temperature: float, alpha: float) -> torch.Tensor:
    """Hinton et al.: alpha * T^2 * KL(soft teacher || soft student) + (1 - alpha) * CE."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean") * temperature ** 2
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


def train_classifier(model: nn.Module, data: Dataset, *, epochs: int, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                     teacher: nn.Module | None = None, temperature: float = 4.0,
                     alpha: float = 0.5, progress=None, val: Dataset | None = None,
                     weight_decay: float = 0.0, optimizer: str = "adam") -> nn.Module:
    """Train `model` in place on labelled data and return it in eval mode."""
    if data.y is None:
        raise InputError(f"training needs labels: {data.source} has no 'y'; give labelled data "
                         "or a training function of your own.")
    seed_everything(seed)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=lr, weight_decay=weight_decay) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay))
    if teacher is not None:
        teacher.eval()
    generator = torch.Generator().manual_seed(seed)
    # Progress counts batches, not epochs: one epoch of a large model takes minutes.
    batches = -(-len(x) // batch_size)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            logits = model(x[index])
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(x[index])
                loss = distillation_loss(logits, teacher_logits, y[index],
                                         temperature=temperature, alpha=alpha)
            elif loss_fn is not None:
                loss = loss_fn(logits, y[index])
            else:
                loss = F.cross_entropy(logits, y[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None:
                progress("training", epoch * batches + start // batch_size + 1,
                         epochs * batches)
    model.eval()
    return model


def predict(model: nn.Module, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Model outputs for `x` in eval mode, batched, as float32 numpy.

    Also `edgecomp.results.agreement.float_outputs`: the reference an artifact is compared with.
    """
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            outputs.append(model(torch.from_numpy(x[start:start + batch])).float().numpy())
    return np.concatenate(outputs)


def evaluate(model: nn.Module, data: Dataset) -> float:
    """Top-1 accuracy in percent on labelled data."""
    if data.y is None:
        raise InputError(f"accuracy needs labels; {data.source} has none.")
    return float((predict(model, data.x).argmax(axis=1) == data.y).mean() * 100.0)
