"""Read an artifact back from disk, with its manifest when edgecomp wrote one."""

from __future__ import annotations

import json
from pathlib import Path

from edgecomp.errors import InputError, terminal_safe
from edgecomp.export import Exporter, exporter_for_path
from edgecomp.export.base import Artifact, Precision
from edgecomp.export.manifest import MAX_NAME_CHARS, Manifest
from edgecomp.hashing import file_sha256
from edgecomp.model.signature import InputSpec
from edgecomp.model.untrusted import MAX_MODEL_BYTES, open_regular, read_regular

MAX_MANIFEST_BYTES = 64 * 2**20  # a manifest lists tensors and ops; megabytes at most


def artifact_from_file(path: Path) -> Artifact:
    """An Artifact for `path`; without a manifest its precision is read from the file."""
    from edgecomp.model.foreign import refuse_foreign

    refuse_foreign(path)  # a TorchScript or Keras model gets its own sentence
    open_regular(path, what="artifact", max_bytes=MAX_MODEL_BYTES).close()
    exporter = exporter_for_path(path)
    manifest_path = path.with_suffix(path.suffix + ".json")
    sha = file_sha256(path)
    if not manifest_path.exists():
        return Artifact(path=path, manifest=_manifest_from_file(path, exporter, sha))
    try:
        data = json.loads(read_regular(manifest_path, what="manifest",
                                       max_bytes=MAX_MANIFEST_BYTES))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{manifest_path} is not valid JSON ({exc}); delete it to measure "
                         "the artifact without it.") from exc
    try:
        manifest = Manifest.from_json(
            data, source=f"{manifest_path} is not an edgecomp manifest")
    except InputError as exc:
        raise InputError(f"{str(exc).rstrip('.')}; delete it to measure the artifact "
                         "without it.") from None
    if manifest.sha256 != sha:
        raise InputError(f"{path} does not match its manifest {manifest_path.name} (sha256 "
                         "differs): the file changed after export; re-export it or delete "
                         "the stale manifest.")
    if manifest.format != exporter.format:
        raise InputError(f"{manifest_path} describes a {manifest.format.value} artifact, not "
                         f"{path.name}; delete it to measure the artifact without it.")
    return Artifact(path=path, manifest=manifest)


def _manifest_from_file(path: Path, exporter: Exporter, sha: str) -> Manifest:
    """What a foreign artifact is, read from the file itself."""
    fmt = exporter.format.value
    try:
        details = exporter.inspect(path)
    except Exception as exc:  # runtimes raise assorted types for a corrupt file
        raise InputError(f"{path} is not a readable {fmt} model (truncated or corrupt?): "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else exc!r}") from exc
    by_dtype = details["weight_bytes_by_dtype"]
    if details["integer_weight_share"] > 0.5:
        quantized_io = any(i["dtype"] in ("int8", "uint8") for i in details["inputs"])
        activation_quant = quantized_io or any(op in details["ops"] for op in (
            "QUANTIZE", "QuantizeLinear"))
        precision = Precision.INT8 if activation_quant else Precision.DYNAMIC_INT8
    elif by_dtype.get("float16", 0) > by_dtype.get("float32", 0):
        precision = Precision.FP16
    else:
        precision = Precision.FP32
    return Manifest.from_json({
        "file": path.name, "format": fmt, "precision": precision.value,
        "io_dtype": details["inputs"][0]["dtype"] if details["inputs"] else "float32",
        "sha256": sha, "size_bytes": path.stat().st_size, "model": _model_name(path),
        "technique": "none", "source_sha256": "unknown", "calibration": None,
        # Nothing says which model it came from: the file is its own model, so two files
        # of one name are never compared as one model.
        "model_sha256": sha, **details}, source=f"what {path.name} holds")


def _model_name(path: Path) -> str:
    """A foreign artifact's model name: its file's stem up to the first dot, with what a
    terminal cannot show escaped (a model name is printable; the file keeps its name)."""
    return terminal_safe(path.stem.split(".")[0])[:MAX_NAME_CHARS] or path.name


def artifact_inputs(artifact: Artifact) -> tuple[InputSpec, ...]:
    """The artifact's inputs as data feeds them: quantized int8 inputs take float values
    (the agent quantizes them with the tensor's scale); open dimensions stay open."""
    from edgecomp.model.signature import UNKNOWN

    specs = []
    for entry in artifact.manifest.inputs:
        shape = tuple(d if isinstance(d, int) and d > 0 else UNKNOWN for d in entry.shape)
        dtype = "float32" if entry.quantization else entry.dtype
        specs.append(InputSpec(entry.name, shape, dtype))
    return tuple(specs)
