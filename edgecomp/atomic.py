"""Write files so that a reader finds the old file or the new one, never half of one.

Each writer puts its data under a temporary name in the destination's directory and
renames it over the destination (`os.replace`, atomic on POSIX and Windows within one
file system). When writing fails, the temporary file is removed and nothing changes.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`.

    For libraries that write to a path themselves (`onnx.save`, `torch.save`, a
    converter's `export`). The temporary name keeps `path`'s suffix, since some of them
    choose the format from it. If the block raises, the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def strict_json(value: Any, *, indent: int | None = None,
                default: Callable[[Any], Any] | None = None) -> str:
    """`value` as strict JSON: a non-finite number (NaN, Infinity, which JSON does not have
    and other readers refuse) is written as null, meaning "no number"."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False, default=default)


def atomic_write_json(path: Path, value: Any, *, indent: int | None = 2) -> None:
    """Write `value` as strict JSON to `path` atomically."""
    atomic_write_text(path, strict_json(value, indent=indent))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
