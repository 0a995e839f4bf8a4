"""Read files a stranger may have written: regular files within a size budget, and model
archives checked so that loading them runs no code.

A model or data file is opened only when it is a regular file (a FIFO named `x.png`
would block forever, a device would never end) no larger than its budget. A `.pt2`
archive is read once into memory and checked before torch sees it: torch.export.load
unpickles some records with full pickle (sample inputs after a failed weights-only try,
weights or constants marked `use_pickle`, opaque objects), loads compiled AOTInductor
libraries, and imports modules named in pytree contexts. Every record it would unpickle
must pass torch's own weights-only unpickler; the others are refused with a sentence.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import stat
import zipfile
from pathlib import Path
from typing import IO, Any

from edgecomp.errors import InputError

# Model files are read whole into memory (torch and onnx do so too); beyond this a model
# does not belong on an edge board and the budget protects the host.
MAX_MODEL_BYTES = 8 * 2**30
# pytree contexts with these keys make torch import a module named in the file.
_IMPORTING_KEYS = frozenset({"__enum__", "default_factory_module"})


def open_regular(path: Path, *, what: str, max_bytes: int | None) -> IO[bytes]:
    """Open `path` for reading when it is a regular file of at most `max_bytes` bytes
    (any size with None: for readers that bound what they load themselves).

    Opened without blocking and checked on the open descriptor, so a FIFO or device
    swapped in under the name is refused rather than read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist.") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.strerror}).") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else \
                "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
            raise InputError(f"{what} {path} is {kind}, not a regular file; give a file.")
        if max_bytes is not None and info.st_size > max_bytes:
            raise InputError(f"{what} {path} is {size_text(info.st_size)}, more than "
                             f"edgecomp reads ({size_text(max_bytes)}).")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def size_text(count: int) -> str:
    """A byte count for messages: '3.5 GiB', '12.0 MiB', '800 bytes'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def read_regular(path: Path, *, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` bytes (see `open_regular`)."""
    with open_regular(path, what=what, max_bytes=max_bytes) as handle:
        return handle.read(max_bytes + 1)[:max_bytes]


def checked_pt2(path: Path) -> io.BytesIO:
    """The bytes of a torch.export archive, once nothing in it would run code when loaded.

    Pass the returned buffer, not the path, to `torch.export.load`: the bytes checked are
    the bytes loaded.
    """
    from torch.export.pt2_archive import PT2ArchiveReader
    from torch.export.pt2_archive import constants as pt2

    data = read_regular(path, what="model file", max_bytes=MAX_MODEL_BYTES)
    try:
        # torch's own archive reader lists the records, so we check what torch will read.
        reader = PT2ArchiveReader(io.BytesIO(data))
        names = set(reader.get_file_names())
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.namelist()
    except Exception as exc:  # the C++ reader raises RuntimeError, AssertionError, ...
        raise InputError(f"{path} is not a readable torch.export program (truncated or "
                         f"corrupt?): {_first_line(exc)}") from exc
    # torch.export.load falls back to an older layout read by Python's zipfile, with
    # records at the top level; both readers must see the same records under one folder.
    if len(members) != len(set(members)) or \
            {m.partition("/")[2] for m in members} != names or \
            any("/" not in m for m in members) or pt2.ARCHIVE_VERSION_PATH not in names:
        raise _refused(path, "its records are not laid out as torch.export.save writes them")
    if any(n.startswith((pt2.AOTINDUCTOR_DIR, pt2.MTIA_DIR, pt2.EXECUTORCH_DIR,
                         pt2.XL_MODEL_WEIGHTS_DIR)) for n in names):
        raise _refused(path, "it holds compiled code (AOTInductor or another backend), "
                             "which loading would run")
    models = {n for n in names if n.startswith(pt2.MODELS_DIR) and n.endswith(".json")}
    configs, raw, pickled = set(), set(), set()
    for model in models:
        model_name = model[len(pt2.MODELS_DIR):-len(".json")]
        _refuse_imports(path, model, reader.read_bytes(model))
        for directory, fmt in ((pt2.WEIGHTS_DIR, pt2.WEIGHTS_CONFIG_FILENAME_FORMAT),
                               (pt2.CONSTANTS_DIR, pt2.CONSTANTS_CONFIG_FILENAME_FORMAT)):
            config = fmt.format(model_name)
            if config not in names:
                continue
            configs.add(config)
            for fqn, entry in _payloads(path, config, reader.read_bytes(config)):
                record = posixpath.join(directory, entry["path_name"])  # as torch joins it
                if entry["path_name"].startswith((pt2.CUSTOM_OBJ_FILENAME_PREFIX,
                                                  pt2.OPAQUE_OBJ_FILENAME_PREFIX)):
                    raise _refused(path, f"constant {fqn!r} is a Python or TorchScript object, "
                                         "which loading would unpickle with full pickle")
                (pickled if entry.get("use_pickle") else raw).add(record)
    text = {pt2.ARCHIVE_FORMAT_PATH, pt2.ARCHIVE_VERSION_PATH, "byteorder"} | models | configs
    for name in sorted(names):
        if name not in pickled and (name in text or name in raw or
                                    name.startswith((".data/", pt2.EXTRA_DIR))):
            continue  # read as text, JSON or raw tensor bytes: never unpickled
        _weights_only(path, name, reader.read_bytes(name))
    return io.BytesIO(data)


def _payloads(path: Path, config: str, data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(fqn, entry) pairs of a weights or constants config, each with a str path_name."""
    try:
        entries = json.loads(data)["config"]
        pairs = [(str(fqn), entry) for fqn, entry in entries.items()]
        if all(isinstance(e, dict) and isinstance(e.get("path_name"), str) for _, e in pairs):
            return pairs
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    raise _refused(path, f"its record {config} is not a payload table")


def _refuse_imports(path: Path, record: str, data: bytes) -> None:
    """Refuse a program whose pytree contexts name a module for torch to import."""
    try:
        program = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _refused(path, f"its record {record} is not JSON") from exc
    pending = [program]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if _IMPORTING_KEYS & value.keys():
                raise _refused(path, "its input/output structure names a Python module to "
                                     "import, which loading would run")
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and value.startswith(("[", "{")):
            # Tree specs and their contexts are JSON nested in strings.
            try:
                pending.append(json.loads(value))
            except (ValueError, RecursionError):
                pass


def _weights_only(path: Path, record: str, data: bytes) -> None:
    """Refuse a record that torch's weights-only unpickler does not accept."""
    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler raises UnpicklingError, RuntimeError, ...
        called = re.search(r"GLOBAL (\S+)", str(exc))
        what = f"calls {called.group(1)}" if called else "is not plain tensors"
        raise _refused(path, f"its record {record} is a pickle that {what}, so loading it "
                             "could run code") from exc


def _refused(path: Path, why: str) -> InputError:
    return InputError(f"{path} was refused: {why}. Export the model again with "
                      "torch.export.save from code you trust.")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200].rstrip(".") if lines else type(exc).__name__
