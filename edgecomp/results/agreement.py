"""Compare an artifact's outputs, computed in its real runtime, with the float model's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np


if TYPE_CHECKING:
    from edgecomp.model.data import Dataset


@dataclass(frozen=True)
class Agreement:
    """How closely an artifact's outputs follow the float model on the evaluation set.

    The headline numbers are for the model's first output: mean (and worst) cosine per
    sample, absolute errors, and `decision`, the share of samples (percent) where the
    artifact makes the float model's call: the same top class for a vector of scores,
    the same side of 0.5 (probabilities) or 0 (logits) for a single value. `outputs`
    holds the same numbers for every output of a model with several.
    """

    cosine: float
    max_abs_err: float
    mean_abs_err: float | None = None
    cosine_min: float | None = None
    decision: float | None = None
    outputs: list[dict[str, Any]] | None = None


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


def _flat(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).astype(np.float64)


def decisions(values: np.ndarray, *, probability: bool) -> np.ndarray:
    """Each sample's call: its top class, or the side of 0.5 / 0 of a single value."""
    flat = _flat(values)
    if flat.shape[1] > 1:
        return flat.argmax(axis=1)
    return flat[:, 0] > (0.5 if probability else 0.0)


def output_agreement(reference: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """Cosine (mean and worst), errors and decision agreement of one output."""
    ref, out = _flat(reference), _flat(outputs)
    if ref.shape != out.shape:
        raise ValueError(f"the artifact's output has {out.shape[1]} values per sample, the "
                         f"float model's {ref.shape[1]}")
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    both_zero = (np.linalg.norm(ref, axis=1) == 0) & (np.linalg.norm(out, axis=1) == 0)
    cosine = np.where(norms > 0, (ref * out).sum(axis=1) / np.maximum(norms, 1e-30),
                      np.where(both_zero, 1.0, 0.0))
    if ref.shape[1] == 1:  # one value per sample has no direction: compare the sequences
        norm = np.linalg.norm(ref) * np.linalg.norm(out)
        cosine = np.array([float((ref * out).sum() / norm) if norm > 0 else 1.0])
    probability = bool(ref.min() >= 0.0 and ref.max() <= 1.0)
    same = decisions(reference, probability=probability) == \
        decisions(outputs, probability=probability)
    error = np.abs(ref - out)
    return {"cosine": round(float(cosine.mean()), 6),
            "cosine_min": round(float(cosine.min()), 6),
            "max_abs_err": round(float(error.max()), 6),
            "mean_abs_err": round(float(error.mean()), 6),
            "decision": round(float(same.mean() * 100.0), 3)}


def compare_outputs(reference: Sequence[np.ndarray] | np.ndarray,
                    outputs: Sequence[np.ndarray] | np.ndarray,
                    eval_set: Dataset) -> Verification:
    """Agreement of every output (headline: the first) and, with labels, accuracy delta."""
    reference = [reference] if isinstance(reference, np.ndarray) else list(reference)
    outputs = [outputs] if isinstance(outputs, np.ndarray) else list(outputs)
    if len(reference) != len(outputs):
        raise ValueError(f"the artifact has {len(outputs)} outputs, the float model "
                         f"{len(reference)}")
    for index, (ref, out) in enumerate(zip(reference, outputs)):
        for values, whose in ((out, "the artifact"), (ref, "the float model")):
            bad = ~np.isfinite(_flat(values)).all(axis=1)
            if bad.any():  # no agreement can be computed from NaN: say so, do not store NaN
                raise ValueError(f"{whose} gave NaN or infinite values in output {index} on "
                                 f"{int(bad.sum())} of {len(bad)} samples")
    per_output = [output_agreement(r, o) for r, o in zip(reference, outputs)]
    first = per_output[0]
    agreement = Agreement(cosine=first["cosine"], max_abs_err=first["max_abs_err"],
                          mean_abs_err=first["mean_abs_err"], cosine_min=first["cosine_min"],
                          decision=first["decision"],
                          outputs=per_output if len(per_output) > 1 else None)
    count = len(reference[0])
    if eval_set.y is None:
        return Verification(None, None, None, agreement, count)
    accuracy, float_accuracy = top1(outputs[0], eval_set.y), top1(reference[0], eval_set.y)
    return Verification(round(accuracy, 3), round(float_accuracy, 3),
                        round(accuracy - float_accuracy, 3), agreement, count)
