"""Content hashes that tie every result to the exact bytes it came from."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy only where arrays are hashed: hashing files stays light
    import numpy as np


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks so large models need no extra memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def array_sha256(*arrays: np.ndarray | None) -> str:
    """sha256 over arrays' dtype, shape and bytes, so equal data always hashes equal."""
    import numpy as np

    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        contiguous = np.ascontiguousarray(array)
        digest.update(str(contiguous.dtype).encode())
        digest.update(str(contiguous.shape).encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def state_dict_sha256(state: dict) -> str:
    """sha256 of a model's parameters and buffers in key order."""
    import numpy as np

    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key]
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()
