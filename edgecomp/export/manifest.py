"""The manifest beside every artifact: exactly what the file is, as a frozen, checked type.

Written by the exporters (`edgecomp.export.base.finish_artifact`) as `<artifact>.json`, read
back by `edgecomp bench`, the artifact cache and the results store. A manifest read from
disk is checked field by field (`Manifest.from_json`): a manifest from someone else that is
not what edgecomp wrote is refused with one sentence naming the file and the field, before
anything is measured or stored.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.dataclasses import dataclass

from edgecomp.config import validate
from edgecomp.quantize.target import SearchLog
from edgecomp.vocab import Format, Precision

MANIFEST_VERSION = 1
# Keys a manifest holds only where they apply (ONNX, int8, a search).
_LEFT_OUT_WHEN_NONE = frozenset({"opset", "reduce_range", "float_layers", "activation_dtype",
                                 "search"})

# Unknown keys are refused; enum fields keep their members (`manifest.format.value`).
MANIFEST = ConfigDict(extra="forbid")

Count = Annotated[StrictInt, Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]

MAX_NAME_CHARS = 200  # a model, technique or file name; tables and file names stay usable
MAX_TEXT_CHARS = 4096  # any other text: tensor and op names, tool versions, a data source
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _storable(text: str) -> str:
    """Text every store and JSON file can hold: encodable as UTF-8 (a lone surrogate, e.g.
    from a file name that is not UTF-8, is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{text!r} is not valid Unicode text (a lone surrogate)") from None
    return text


def _printable(text: str) -> str:
    """A name shown in tables and logs: printable characters only (no control characters,
    escape sequences or line breaks)."""
    if not text.isprintable():
        raise ValueError(f"{text!r} holds characters that are not printable (control "
                         "characters, escape sequences or line breaks)")
    return text


def _sha256(text: str) -> str:
    if not _SHA256.fullmatch(text):
        raise ValueError(f"{text!r} is not a sha256 (64 lowercase hexadecimal digits)")
    return text


def _source_sha256(text: str) -> str:
    """A source's sha256, or "unknown" for an artifact measured without a manifest."""
    return text if text == "unknown" else _sha256(text)


Text = Annotated[StrictStr, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_storable)]
# Names are what results are filed and shown under: printable text of bounded length.
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_CHARS),
                 AfterValidator(_storable), AfterValidator(_printable)]
# The artifact's file name as it is on disk: any valid text (it is shown escaped).
FileName = Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(_storable)]
Sha256 = Annotated[StrictStr, AfterValidator(_sha256)]
SourceSha256 = Annotated[StrictStr, AfterValidator(_source_sha256)]


def _numpy_dtype(name: str) -> str:
    import numpy as np

    try:
        np.dtype(name)
    except TypeError:
        raise ValueError(f"{name!r} is not a numpy dtype") from None
    return name


DType = Annotated[Text, AfterValidator(_numpy_dtype)]


@dataclass(frozen=True, config=MANIFEST)
class Quantization:
    """The scale and zero point of an integer tensor (LiteRT reports them)."""

    scale: Finite
    zero_point: StrictInt


@dataclass(frozen=True, config=MANIFEST)
class Tensor:
    """One input or output of the artifact, or one input the exporter fed."""

    name: Text
    shape: tuple[StrictInt | Text, ...]  # a name or -1 where the dimension is open
    dtype: DType
    quantization: Quantization | None = None


@dataclass(frozen=True, config=MANIFEST)
class Calibration:
    """The data an int8 artifact's activation ranges came from, and how they were chosen."""

    source: Text
    sha256: Sha256
    samples: Count
    method: Text
    per_channel: StrictBool
    activation_symmetric: StrictBool = False


@dataclass(frozen=True, config=MANIFEST)
class Opset:
    domain: Text
    version: StrictInt


@dataclass(frozen=True, config=MANIFEST)
class Manifest:
    """What an artifact is: its file and hash, the model and technique it came from, the
    data that calibrated it, what it holds (read back from the file) and, for an int8
    artifact chosen by the accuracy-aware search, every candidate tried."""

    file: FileName
    format: Format
    precision: Precision
    io_dtype: DType  # the dtype of its input tensors ("float32", "int8", ...)
    sha256: Sha256
    size_bytes: Count
    model: Name
    technique: Name
    source_sha256: SourceSha256
    manifest_version: Literal[1] = MANIFEST_VERSION
    # The model as the user gave it, before any compression; None in manifests written
    # before it was kept.
    model_sha256: Sha256 | None = None
    calibration: Calibration | None = None
    inputs_fed: tuple[Tensor, ...] = ()
    tools: dict[Text, Text] = dataclasses.field(default_factory=dict)
    inputs: tuple[Tensor, ...] = ()
    outputs: tuple[Tensor, ...] = ()
    ops: dict[Text, Count] = dataclasses.field(default_factory=dict)
    opset: tuple[Opset, ...] | None = None  # ONNX
    weight_bytes_by_dtype: dict[Text, Count] = dataclasses.field(default_factory=dict)
    integer_weight_share: Finite = 0.0
    reduce_range: StrictBool | None = None  # ONNX
    float_layers: tuple[Text, ...] | None = None  # ONNX int8: nodes kept in float
    activation_dtype: Text | None = None  # ONNX static int8: "int8" or "uint8"
    search: SearchLog | None = None

    @property
    def identity(self) -> str:
        """The model as results identify it: its content as given, else its source's."""
        return self.model_sha256 or self.source_sha256

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON (enums as their text); the facts only some formats or
        searches have are left out where they have none."""
        data = _plain(dataclasses.asdict(self))
        return {key: value for key, value in data.items()
                if value is not None or key not in _LEFT_OUT_WHEN_NONE}

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> Manifest:
        """A manifest from JSON; InputError naming `source` and the field when it is not
        one edgecomp understands."""
        return validate(data, cls, source=source)


def _plain(value: Any) -> Any:
    """asdict's output with enum members as their text and tuples as lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return getattr(value, "value", value) if hasattr(value, "value") and \
        isinstance(value, str) else value
