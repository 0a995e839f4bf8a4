"""Exporters: one module per format, each declaring its facts; the registry all consumers read.

An exporter class declares what its format is (`format`, `suffix`), which precisions it
produces, whether it needs a PyTorch module or can start from an ONNX file, and how to
read its own output back (`inspect`). The CLI's choices, the planner, the pipeline and
`artifact_from_file` ask this registry instead of repeating those facts.

Importing this package is cheap: the built-in exporter modules are imported on the first
registry query, and they import torch, onnx, litert-torch and onnxruntime only inside
the functions that use them, so `edgecomp --help` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol

from edgecomp.errors import InputError
from edgecomp.registry import Registry
from edgecomp.vocab import CalibrationMethod, Format, Precision

if TYPE_CHECKING:
    from edgecomp.export.base import Artifact, ExportRequest


@dataclass(frozen=True)
class Int8Options:
    """The int8 options of a format that the accuracy-aware search may try beyond the
    plan's own: the activation calibrations it offers, and whether it can keep the layers
    that add the most error in float (mixed precision)."""

    calibrations: tuple[CalibrationMethod, ...]
    float_layers: bool


class Exporter(Protocol):
    """Turns an ExportRequest into an artifact file in `request.out_dir`, and reads one back."""

    format: ClassVar[Format]
    suffix: ClassVar[str]  # with the dot: ".tflite"
    precisions: ClassVar[frozenset[Precision]]  # what it can produce
    needs_module: ClassVar[bool]  # True: needs a torch module; False: also works from .onnx
    # Precisions deliberately not offered, with the reason (shown in error messages).
    declined: ClassVar[Mapping[Precision, str]]
    int8_options: ClassVar[Int8Options]  # what the int8 search may try for this format

    def export(self, request: ExportRequest) -> Artifact:
        """Write the artifact and its manifest; nothing half-written remains on failure."""
        ...

    def inspect(self, path: Path) -> dict[str, Any]:
        """I/O tensors, op counts and weight bytes by dtype, read back from a file."""
        ...


@dataclass(frozen=True)
class FormatFacts:
    """What one format offers, for choices, plans and documentation."""

    format: Format
    suffix: str
    precisions: frozenset[Precision]
    needs_module: bool
    declined: Mapping[Precision, str]

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format.value, "suffix": self.suffix,
                "precisions": sorted(p.value for p in self.precisions),
                "needs_module": self.needs_module,
                "declined": {p.value: why for p, why in self.declined.items()}}


def _declares_an_exporter(exporter: object) -> None:
    """The registry's check: TypeError naming the exporter and what it fails to declare."""
    cls = type(exporter)
    problems = []
    if not isinstance(getattr(cls, "format", None), Format):
        problems.append("format must be an edgecomp.vocab.Format")
    if not (isinstance(getattr(cls, "suffix", None), str) and cls.suffix.startswith(".")):
        problems.append("suffix must be a string starting with '.'")
    precisions = getattr(cls, "precisions", None)
    if not (isinstance(precisions, frozenset) and precisions and
            all(isinstance(p, Precision) for p in precisions)):
        problems.append("precisions must be a non-empty frozenset of Precision")
    if not isinstance(getattr(cls, "needs_module", None), bool):
        problems.append("needs_module must be a bool")
    if not isinstance(getattr(cls, "declined", None), Mapping):
        problems.append("declined must be a mapping of Precision to a reason")
    options = getattr(cls, "int8_options", None)
    if not (isinstance(options, Int8Options) and options.calibrations and
            all(isinstance(m, CalibrationMethod) for m in options.calibrations)):
        problems.append("int8_options must be an Int8Options with at least one calibration")
    if problems:
        raise TypeError(f"exporter {cls.__name__}: {'; '.join(problems)}")


# Format -> its exporter (an instance); each exporter module of this package registers one.
EXPORTERS = Registry("format", __name__, check=_declares_an_exporter)


def register_exporter(cls: type) -> type:
    """Class decorator: an instance of the exporter in `EXPORTERS` under its format."""
    EXPORTERS.register(getattr(getattr(cls, "format", None), "value", None))(cls())
    return cls


def exporters() -> dict[Format, Exporter]:
    """Every registered exporter by format (their modules imported on first use)."""
    return {Format(name): exporter for name, exporter in EXPORTERS.items()}


def get_exporter(fmt: Format | str) -> Exporter:
    """The exporter for `fmt` ("tflite", Format.ONNX, ...); an unknown name is an InputError."""
    registry = exporters()
    try:
        return registry[Format(fmt)]
    except (ValueError, KeyError):
        raise InputError(f"unknown format {str(getattr(fmt, 'value', fmt))!r}; choose one of "
                         f"{', '.join(format_names())}.") from None


def format_names() -> list[str]:
    """Registered format names, for CLI choices and messages."""
    return sorted(f.value for f in exporters())


def format_facts() -> dict[Format, FormatFacts]:
    """The declared facts of every registered format."""
    return {fmt: FormatFacts(format=fmt, suffix=e.suffix, precisions=e.precisions,
                             needs_module=e.needs_module, declined=dict(e.declined))
            for fmt, e in sorted(exporters().items(), key=lambda item: item[0].value)}


def supported_precisions(fmt: Format | str) -> frozenset[Precision]:
    """The precisions format `fmt` can produce."""
    return get_exporter(fmt).precisions


def exporter_for_path(path: Path) -> Exporter:
    """The exporter whose artifacts end like `path` (.tflite, .onnx); else an InputError."""
    suffix = Path(path).suffix.lower()
    for exporter in exporters().values():
        if exporter.suffix == suffix:
            return exporter
    known = " and ".join(sorted(e.suffix for e in exporters().values()))
    raise InputError(f"{path}: unknown artifact type; edgecomp reads {known} files.")


def formats_for(precision: Precision | None = None, *, has_module: bool = True
                ) -> tuple[Format, ...]:
    """Formats that can export `precision` (any, when None) from the kind of source given."""
    return tuple(fmt for fmt, e in sorted(exporters().items(), key=lambda item: item[0].value)
                 if (precision is None or precision in e.precisions)
                 and (has_module or not e.needs_module))


def unsupported_reason(fmt: Format | str, precision: Precision, *,
                       has_module: bool = True) -> str | None:
    """Why `fmt` cannot export `precision` from this source, as a sentence; None if it can."""
    exporter = get_exporter(fmt)
    name = exporter.format.value
    if exporter.needs_module and not has_module:
        others = ", ".join(f.value for f in formats_for(has_module=False)) or "none"
        return (f"{name} export needs the PyTorch model; an ONNX file can only be exported "
                f"to {others} (use --format {others.split(',')[0]}), or give the PyTorch "
                "model.")
    if precision in exporter.precisions:
        return None
    offered = ", ".join(sorted(p.value for p in exporter.precisions))
    why = exporter.declined.get(precision)
    alternatives = [f.value for f in formats_for(precision, has_module=has_module)]
    hint = f"; use --format {alternatives[0]} for {precision.value}" if alternatives else ""
    because = f" ({why})" if why else ""
    return (f"{precision.value} {name} export is not offered{because}; {name} produces "
            f"{offered}{hint}.")


def check_supported(fmt: Format | str, precision: Precision, *, has_module: bool = True) -> None:
    """Raise InputError with a sentence when `fmt` cannot export `precision` from this source."""
    reason = unsupported_reason(fmt, precision, has_module=has_module)
    if reason is not None:
        raise InputError(reason)
