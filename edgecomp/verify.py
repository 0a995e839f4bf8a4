"""Compare an artifact's outputs, computed in its real runtime, with the float PyTorch model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecomp.compress.train import predict as float_outputs  # noqa: F401  (one implementation)
from edgecomp.data import Dataset
from edgecomp.results.record import Agreement


@dataclass(frozen=True)
class Verification:
    """Accuracy (with labels) and output agreement of one artifact against the float model."""

    accuracy: float | None
    float_accuracy: float | None
    accuracy_delta: float | None  # artifact minus float, in percentage points
    agreement: Agreement | None
    samples: int


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float((outputs.reshape(len(outputs), -1).argmax(axis=1) == labels).mean() * 100.0)


def compare_outputs(reference: np.ndarray, outputs: np.ndarray,
                    eval_set: Dataset) -> Verification:
    """Accuracy delta (when labels exist) and cosine / max-abs agreement per sample."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = np.where(norms > 0, (ref * out).sum(axis=1) / np.maximum(norms, 1e-30), 1.0)
    agreement = Agreement(cosine=round(float(cosine.mean()), 6),
                          max_abs_err=round(float(np.abs(ref - out).max()), 6))
    if eval_set.y is None:
        return Verification(None, None, None, agreement, len(ref))
    accuracy, float_accuracy = top1(out, eval_set.y), top1(ref, eval_set.y)
    return Verification(round(accuracy, 3), round(float_accuracy, 3),
                        round(accuracy - float_accuracy, 3), agreement, len(ref))
