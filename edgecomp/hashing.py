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


def module_sha256(module) -> str:
    """sha256 of what decides a torch module's exported graph: its parameters and buffers
    (names, shapes, dtypes, bytes), its module tree as printed, and the source files of its
    own (non-torch) classes, or a traced module's generated code.

    Behaviour set by code outside those files (a helper module the forward calls) is not
    seen; torch's own classes are identified by the torch version beside this hash.
    """
    import inspect

    state = module.state_dict()
    digest = hashlib.sha256(state_dict_sha256(state).encode())
    for key in sorted(state):
        digest.update(f"{key}:{tuple(state[key].shape)}:{state[key].dtype};".encode())
    digest.update(repr(module).encode())
    classes = {type(m) for m in module.modules()}
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__qualname__)):
        digest.update(f"{cls.__module__}.{cls.__qualname__};".encode())
        if cls.__module__.split(".")[0] == "torch":
            continue
        try:
            path = inspect.getsourcefile(cls)
        except (TypeError, OSError):  # defined in C or interactively: only its name counts
            path = None
        if path and Path(path).is_file():
            digest.update(file_sha256(Path(path)).encode())
    for sub in module.modules():
        code = getattr(sub, "code", None)  # torch.fx GraphModules carry their forward as code
        if isinstance(code, str):
            digest.update(code.encode())
    return digest.hexdigest()
