"""Weight sharing limits distinct values; the Huffman archive decodes to identical weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgecomp.compress.base import make_pass
from edgecomp.compress.huffman import code_lengths, decode, encode, read_archive, write_archive
from edgecomp.model.train import evaluate
from edgecomp.errors import InputError


def test_huffman_round_trip_and_optimal_lengths():
    symbols = [0] * 50 + [1] * 25 + [2] * 13 + [3] * 12
    lengths = code_lengths(symbols)
    assert lengths[0] == 1 and lengths[0] < lengths[3]
    data = encode(symbols)
    decoded, end = decode(data, 0)
    assert decoded == symbols and end == len(data)
    # Exact accounting: 8-byte header, 3 bytes per table entry, bits padded to a byte.
    bits = sum(lengths[s] for s in symbols)
    assert len(data) == 8 + 3 * len(lengths) + (bits + 7) // 8
    assert decode(encode([7] * 5), 0)[0] == [7] * 5  # a single symbol still decodes


def test_clustered_model_is_what_the_archive_decodes_to(trained_mlp, context, digits):
    pruned, _ = make_pass("prune.magnitude", {"sparsity": 0.9, "schedule": "gradual",
                                              "steps": 3, "finetune_epochs": 4}) \
        .apply(trained_mlp, context(trained_mlp))
    ctx = context(trained_mlp)
    model, report = make_pass("cluster", {"fc_bits": 4, "finetune_epochs": 3}).apply(pruned, ctx)
    path = Path(report.files["archive"])
    assert path.parent == ctx.out_dir and path.name == "test.ecdc"
    assert report.metrics["archive_bytes"] == path.stat().st_size
    decoded = read_archive(path)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            assert torch.equal(decoded[name]["weight"], module.weight.detach()), name
            assert torch.equal(decoded[name]["bias"], module.bias.detach()), name
            nonzero = module.weight[module.weight != 0]
            assert torch.unique(nonzero).numel() <= 16
            pruned_zero = pruned.get_submodule(name).weight == 0
            assert bool((module.weight[pruned_zero] == 0).all())  # pruned zeros stay zero
    fp32_bytes = sum(p.numel() for p in trained_mlp.parameters()) * 4
    assert fp32_bytes / path.stat().st_size > 20
    assert evaluate(model, digits[1]) >= evaluate(trained_mlp, digits[1]) - 3.0


def test_centroids_are_finetuned(trained_mlp, context):
    ctx = context(trained_mlp)
    frozen, _ = make_pass("cluster", {"fc_bits": 3, "finetune_epochs": 0, "archive": False}) \
        .apply(trained_mlp, ctx)
    tuned, _ = make_pass("cluster", {"fc_bits": 3, "finetune_epochs": 2, "archive": False}) \
        .apply(trained_mlp, ctx)
    a, b = frozen.net[1].weight, tuned.net[1].weight
    assert torch.unique(b).numel() <= 8
    assert not torch.equal(torch.unique(a), torch.unique(b))


def test_corrupt_archive_is_one_sentence(tmp_path):
    path = tmp_path / "w.ecdc"
    write_archive({"fc": {"indices": np.array([[0, -1, 1, 1]]),
                          "codebook": np.array([0.5, -0.25], np.float32), "bias": None}}, path)
    assert read_archive(path)["fc"]["weight"].tolist() == [[0.5, 0.0, -0.25, -0.25]]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(InputError, match="truncated|corrupt"):
        read_archive(path)
    path.write_bytes(b"not an archive")
    with pytest.raises(InputError, match="not an edgecomp compressed archive"):
        read_archive(path)


def test_bits_out_of_range():
    with pytest.raises(InputError, match="between 2 and 8"):
        make_pass("cluster", {"fc_bits": 1})
