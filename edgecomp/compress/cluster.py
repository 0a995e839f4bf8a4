"""Weight clustering (k-means weight sharing) with centroid fine-tuning and a Huffman archive.

Deep Compression (Han et al., 2016): each layer's non-zero weights share 2^bits
centroids (linear initialization over the weight range), the centroids are fine-tuned
with the gradients of their members summed, pruned zeros stay zero, and the result is
Huffman-coded (huffman.py) into an archive whose exact size is the file's size.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np
import torch
from pydantic import StrictInt
from torch import nn
from torch.nn.utils import parametrize

from edgecomp.compress.base import (DataContext, Epochs, LearningRate, PassReport, register_pass,
                                     finetune)
from edgecomp.compress.huffman import read_archive, write_archive
from edgecomp.compress.prune import prunable_layers
from edgecomp.errors import InputError
from edgecomp.vocab import Precision


def kmeans_1d(values: np.ndarray, clusters: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroids and labels of 1-D k-means with linear initialization (sklearn KMeans)."""
    from sklearn.cluster import KMeans

    distinct = np.unique(values)
    clusters = min(clusters, len(distinct))
    init = np.linspace(values.min(), values.max(), clusters).reshape(-1, 1)
    km = KMeans(n_clusters=clusters, init=init, n_init=1, random_state=seed, max_iter=100)
    labels = km.fit_predict(values.reshape(-1, 1).astype(np.float64))
    return km.cluster_centers_.reshape(-1).astype(np.float32), labels


class SharedWeights(nn.Module):
    """Parametrization: weight = centroids[index] where kept, 0 where pruned."""

    def __init__(self, centroids: np.ndarray, indices: np.ndarray):
        super().__init__()
        self.centroids = nn.Parameter(torch.from_numpy(centroids.copy()))
        self.register_buffer("indices", torch.from_numpy(indices.astype(np.int64)))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        shared = self.centroids[self.indices.clamp(min=0)]
        return torch.where(self.indices >= 0, shared, torch.zeros_like(shared))


@register_pass
class Clustering:
    """k-means weight sharing per layer (2-8 bit indices), fine-tuned, Huffman archived."""

    name: ClassVar[str] = "cluster"
    must_come_last: ClassVar[bool] = True  # shared centroids; the archive is written from them
    export_precision: ClassVar[Precision | None] = None
    plan_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, conv_bits: StrictInt = 8, fc_bits: StrictInt = 5,
                 finetune_epochs: Epochs = 3, lr: LearningRate = 1e-3, archive: bool = True,
                 distill: bool = False):
        for bits in (conv_bits, fc_bits):
            if not 2 <= bits <= 8:
                raise InputError(f"cluster: bits must be between 2 and 8, got {bits}.")
        self.conv_bits, self.fc_bits = conv_bits, fc_bits
        self.finetune_epochs, self.lr, self.archive = finetune_epochs, lr, archive
        self.distill = distill

    def apply(self, model: nn.Module, ctx: DataContext) -> tuple[nn.Module, PassReport]:
        model = copy.deepcopy(model)
        layers = prunable_layers(model)
        report = PassReport(self.name, params=vars(self).copy())
        for name, module in layers:
            weight = module.weight.detach().numpy()
            kept = weight != 0
            bits = self.conv_bits if isinstance(module, nn.Conv2d) else self.fc_bits
            centroids, labels = kmeans_1d(weight[kept], 2 ** bits, seed=ctx.seed)
            indices = np.full(weight.shape, -1, dtype=np.int64)
            indices[kept] = labels
            parametrize.register_parametrization(module, "weight",
                                                 SharedWeights(centroids, indices))
            # Only the centroids learn: the original weight tensor is frozen.
            module.parametrizations.weight.original.requires_grad_(False)
        model = finetune(model, ctx, self.finetune_epochs, lr=self.lr, distill=self.distill)
        layers_out = {}
        for name, module in layers:
            shared = module.parametrizations.weight[0]
            layers_out[name] = {"indices": shared.indices.numpy(),
                                "codebook": shared.centroids.detach().numpy(),
                                "bias": None if module.bias is None else
                                module.bias.detach().numpy()}
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            distinct = torch.unique(module.weight[module.weight != 0]).numel()
            report.metrics.setdefault("distinct_values", {})[name] = distinct
        if self.archive:
            out = ctx.out_dir or Path(tempfile.mkdtemp(prefix="edgecomp-archive-"))
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{ctx.stem}.ecdc"
            size = write_archive(layers_out, path)
            _use_archive_biases(model, read_archive(path))
            report.files["archive"] = str(path)
            report.metrics["archive_bytes"] = size
            fp32 = sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
                       for _, m in layers) * 4
            report.metrics["archive_ratio"] = round(fp32 / size, 2)
        model.eval()
        return model, report


def _use_archive_biases(model: nn.Module, decoded: dict) -> None:
    """Make the model hold exactly what the archive decodes to (biases are float16 there)."""
    for name, module in prunable_layers(model):
        if name in decoded and decoded[name]["bias"] is not None:
            with torch.no_grad():
                module.bias.copy_(decoded[name]["bias"])
