"""What every exporter shares: the request, the Artifact it returns, the manifest beside it.

The exporter interface and registry are in `edgecomp.export` (the package).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from edgecomp.atomic import atomic_write_text
from edgecomp.errors import InputError
from edgecomp.export.manifest import Manifest
from edgecomp.hashing import file_sha256
from edgecomp.model.signature import InputSpec
from edgecomp.vocab import ActivationDtype, Format, IoDtype
from edgecomp.vocab import CalibrationMethod, Precision  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # torch stays out of `edgecomp --help`
    import numpy as np
    import torch

    from edgecomp.model.data import Dataset


@dataclass(frozen=True)
class ExportRequest:
    """Everything an exporter needs: the float model, an example input, data and options."""

    module: torch.nn.Module | None
    inputs: tuple[InputSpec, ...]  # the model's inputs, in order
    model_name: str
    source_sha256: str
    precision: Precision
    out_dir: Path
    calib: Dataset | None = None
    io_dtype: IoDtype = IoDtype.FLOAT32  # the artifact's input/output tensors
    per_channel: bool = True
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    reduce_range: bool = False
    activation_symmetric: bool = False  # static int8: activation zero points fixed at 0
    float_layers: int = 0  # static int8: keep this many most error-adding layers in float
    activation_dtype: ActivationDtype = ActivationDtype.INT8  # ONNX static int8 activations
    onnx_path: Path | None = None  # when the source already is an ONNX file
    technique: str = "none"
    progress: Callable[[str, int, int], None] | None = None
    # The model as the user gave it, before any compression (None: `source_sha256`'s):
    # with the name, what results identify a model by.
    model_sha256: str | None = None

    @property
    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return tuple(spec.zeros() for spec in self.inputs)

    def calibration_samples(self) -> Iterator[tuple[np.ndarray, ...]]:
        """The calibration data one sample at a time, each array shaped as its input takes it."""
        from edgecomp.model.signature import sample

        for index in range(len(self.calib)):
            yield sample(self.calib, self.inputs, index)


@dataclass(frozen=True)
class Artifact:
    """An exported model file plus the manifest that says exactly what it is."""

    path: Path
    manifest: Manifest

    @property
    def format(self) -> Format:
        return self.manifest.format

    @property
    def precision(self) -> Precision:
        return self.manifest.precision

    @property
    def manifest_path(self) -> Path:
        return self.path.with_suffix(self.path.suffix + ".json")

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def moved_to(self, path: Path, manifest: Manifest) -> Artifact:
        """The artifact at `path` with `manifest` written beside it (its file renamed there
        first, its old manifest removed): how a kept candidate takes its usual name."""
        self.path.replace(path)
        moved = Artifact(path=path, manifest=manifest)
        atomic_write_text(moved.manifest_path, manifest_json(manifest))
        if self.manifest_path != moved.manifest_path:
            self.manifest_path.unlink(missing_ok=True)
        return moved


def get_exporter(fmt: str):
    """Moved to `edgecomp.export.get_exporter`; kept here while callers switch."""
    from edgecomp.export import get_exporter as registered

    return registered(fmt)


def check_request(exporter, request: ExportRequest) -> None:
    """Refuse, with a sentence, a request the exporter's declared facts rule out."""
    from edgecomp.export import check_supported

    check_supported(exporter.format, request.precision,
                    has_module=request.module is not None)
    if request.module is None and request.onnx_path is None:
        raise InputError(f"{request.model_name}: nothing to export; give a PyTorch model or "
                         "an ONNX file.")
    needs_calibration(request)


def artifact_path(request: ExportRequest, suffix: str) -> Path:
    """Where an artifact goes: <out>/<model>.<technique>.<precision><suffix>, always a
    file directly inside the output folder."""
    stem = request.model_name if request.technique in ("none", "") else \
        f"{request.model_name}.{request.technique}"
    io = "" if request.io_dtype == "float32" or request.precision != Precision.INT8 else ".int8io"
    return request.out_dir / plain_file_name(f"{stem}.{request.precision.value}{io}{suffix}",
                                             out_dir=request.out_dir)


def plain_file_name(name: str, *, out_dir: Path) -> str:
    """`name` when it is one plain file name (no folder, not hidden), else an InputError:
    model and recipe names reach file names, and must never lead outside `out_dir`."""
    if "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise InputError(f"{name!r} is not a plain file name to write inside {out_dir}; "
                         "rename the model or recipe (letters, digits, '.', '_', '-').")
    return name


def tool_versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages that shaped an artifact."""
    versions = {}
    for package in ("edgecomp", "torch", *packages):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def finish_artifact(request: ExportRequest, *, path: Path, fmt: Format,
                    calibration_method: str, details: dict[str, Any]) -> Artifact:
    """Write the manifest beside a finished artifact file and return the Artifact.

    `calibration_method` names how this exporter chose activation ranges; `details` are what
    it read back from the file (`Exporter.inspect`) and its own facts. If the manifest
    cannot be written, the artifact is removed too: no file without its manifest.
    """
    try:
        manifest = Manifest.from_json({
            "file": path.name, "format": fmt.value, "precision": request.precision.value,
            "io_dtype": request.io_dtype, "sha256": file_sha256(path),
            "size_bytes": path.stat().st_size, "model": request.model_name,
            "technique": request.technique, "source_sha256": request.source_sha256,
            "model_sha256": request.model_sha256 or request.source_sha256,
            "calibration": None if request.calib is None else {
                "source": request.calib.source, "sha256": request.calib.sha256,
                "samples": len(request.calib), "method": calibration_method,
                "per_channel": request.per_channel,
                "activation_symmetric": request.activation_symmetric},
            "inputs_fed": [spec.to_json() for spec in request.inputs], **details},
            source=f"the manifest of {path.name}")
        artifact = Artifact(path=path, manifest=manifest)
        atomic_write_text(artifact.manifest_path, manifest_json(manifest))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return artifact


def manifest_json(manifest: Manifest) -> str:
    """A manifest as strict JSON: a non-finite number (NaN from a model whose outputs are
    not numbers) is written as null, since NaN and Infinity are not JSON."""
    from edgecomp.atomic import strict_json

    return strict_json(manifest.to_json(), indent=2)


def needs_calibration(request: ExportRequest) -> None:
    """Refuse full-integer export without calibration data, saying how to provide it."""
    if request.precision == Precision.INT8 and request.calib is None:
        raise InputError("int8 export needs calibration data: pass --calib with an .npz file or "
                         "image folder of real inputs (or --calib random to accept poor ranges).")
