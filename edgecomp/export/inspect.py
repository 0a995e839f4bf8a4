"""Look inside an exported artifact: I/O tensors, quantization, and how much is really integer.

An "int8" model that still computes in float is a known trap (FIELD.md), so every
manifest reports the ops and weight bytes by dtype as read back from the file. Each
exporter reads its own format (`Exporter.inspect`); the pieces they share are here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

# Smaller constants are shapes and indices, not weights.
MIN_WEIGHT_ELEMENTS = 16


def inspect_artifact(path: Path) -> dict[str, Any]:
    """What the artifact at `path` holds, read by the exporter of its format."""
    from edgecomp.export import exporter_for_path

    return exporter_for_path(path).inspect(path)


def tensor_entry(detail: dict) -> dict[str, Any]:
    """A LiteRT-style tensor detail as a manifest entry: name, shape, dtype, quantization."""
    import numpy as np

    scale, zero = detail.get("quantization", (0.0, 0))
    entry = {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
             "dtype": np.dtype(detail["dtype"]).name}
    if scale:
        entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
    return entry


def integer_share(weight_bytes: Counter) -> dict[str, Any]:
    """Weight bytes by dtype and the share of them stored as integers."""
    total = sum(weight_bytes.values())
    integer = sum(v for k, v in weight_bytes.items() if k.startswith(("int", "uint")))
    return {"weight_bytes_by_dtype": dict(sorted(weight_bytes.items())),
            "integer_weight_share": round(integer / total, 4) if total else 0.0}
