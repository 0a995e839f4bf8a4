"""The exporter interface, the Artifact it returns, and the manifest written beside it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from edgecomp.errors import InputError
from edgecomp.hashing import file_sha256
from edgecomp.vocab import CalibrationMethod, Precision  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # torch stays out of `edgecomp --help`
    import torch

    from edgecomp.data import Dataset


@dataclass(frozen=True)
class ExportRequest:
    """Everything an exporter needs: the float model, an example input, data and options."""

    module: torch.nn.Module | None
    example_input: torch.Tensor
    model_name: str
    source_sha256: str
    precision: Precision
    out_dir: Path
    calib: Dataset | None = None
    io_dtype: str = "float32"  # "float32" or "int8": the artifact's input/output tensors
    per_channel: bool = True
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    reduce_range: bool = False
    onnx_path: Path | None = None  # when the source already is an ONNX file
    technique: str = "none"
    progress: Callable[[str, int, int], None] | None = None


@dataclass(frozen=True)
class Artifact:
    """An exported model file plus the manifest that says exactly what it is."""

    path: Path
    format: str
    precision: Precision
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def manifest_path(self) -> Path:
        return self.path.with_suffix(self.path.suffix + ".json")

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


class Exporter(Protocol):
    """Turns a request into an artifact file in `request.out_dir`."""

    format: str
    suffix: str

    def export(self, request: ExportRequest) -> Artifact:
        ...


EXPORTERS: dict[str, Exporter] = {}


def register_exporter(cls: type) -> type:
    """Class decorator adding an exporter instance to `EXPORTERS` under its format name."""
    EXPORTERS[cls.format] = cls()
    return cls


def get_exporter(fmt: str) -> Exporter:
    """The exporter for `fmt`, importing the built-in ones on first use."""
    from edgecomp.export import onnx as _onnx  # noqa: F401  (registers itself)
    from edgecomp.export import tflite as _tflite  # noqa: F401  (registers itself)

    if fmt not in EXPORTERS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(sorted(EXPORTERS))}.")
    return EXPORTERS[fmt]


def artifact_path(request: ExportRequest, suffix: str) -> Path:
    """Where an artifact goes: <out>/<model>.<technique>.<precision><suffix>."""
    stem = request.model_name if request.technique in ("none", "") else \
        f"{request.model_name}.{request.technique}"
    io = "" if request.io_dtype == "float32" or request.precision != Precision.INT8 else ".int8io"
    return request.out_dir / f"{stem}.{request.precision.value}{io}{suffix}"


def tool_versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages that shaped an artifact."""
    versions = {}
    for package in ("edgecomp", "torch", *packages):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file under a temporary name and rename it, so no half-written file remains."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finish_artifact(request: ExportRequest, *, path: Path, fmt: str,
                    details: dict[str, Any]) -> Artifact:
    """Write the manifest beside a finished artifact file and return the Artifact."""
    manifest = {
        "manifest_version": 1,
        "file": path.name,
        "format": fmt,
        "precision": request.precision.value,
        "io_dtype": request.io_dtype,
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "model": request.model_name,
        "technique": request.technique,
        "source_sha256": request.source_sha256,
        "calibration": None if request.calib is None else {
            "source": request.calib.source,
            "sha256": request.calib.sha256,
            "samples": len(request.calib),
            "method": request.calibration_method.value if fmt == "onnx" else "histogram",
            "per_channel": request.per_channel,
        },
        **details,
    }
    artifact = Artifact(path=path, format=fmt, precision=request.precision, manifest=manifest)
    atomic_write_bytes(artifact.manifest_path, json.dumps(manifest, indent=2).encode())
    return artifact


def needs_calibration(request: ExportRequest) -> None:
    """Refuse full-integer export without calibration data, saying how to provide it."""
    if request.precision == Precision.INT8 and request.calib is None:
        raise InputError("int8 export needs calibration data: pass --calib with an .npz file or "
                         "image folder of real inputs (or --calib random to accept poor ranges).")
