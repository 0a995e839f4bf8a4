"""Exported artifacts kept by what made them, so the same export is never run twice.

Each artifact is stored under a key: the sha256 of everything that decides its bytes —
the model (source hash, weights, module tree and its classes' code, inputs), format and
precision, the quantization options, the calibration data's hash and size, the accuracy
search's settings and evaluation data when a search picked the artifact, and the versions
of edgecomp (with a digest of its code) and of every exporter library. A deploy or export
whose key matches copies the stored file and manifest into its output folder instead of
exporting again.

The board is not part of the key: boards whose plans ask for the same artifacts share
them, as a fleet shares one build. An int8 artifact that a search picked on one board is
verified again on every board that measures it, so a board where it misses the agreement
target is flagged in its records (`--rebuild` searches again there).

Layout: <root>/<key[:2]>/<key>/ holds the artifact, its manifest and `entry.json`, the
entry's record, which keeps the facts the key was computed from (`edgecomp.export.
cache_entry`). An entry is written in a temporary folder and renamed into place whole, so a
reader sees a complete entry or none.

Nothing in the folder is trusted unchecked. An entry is served only when its record
names a plain file name, its facts equal the facts of the export asking for it, its files
match their hashes and its manifest describes that model, format and technique; any other
entry is a miss (one line says why) and the artifact is exported again. The entries are
kept under MAX_BYTES by removing those used longest ago, and pruning removes only folders
it can prove are entries. Anything else in the root (a folder shared with other tools, a
link to the user's data) is neither counted nor removed: a user who points
EDGECOMP_ARTIFACT_CACHE at a shared folder loses nothing there, and the cache stays
bounded. Deleting the folder (or any entry) at any time is safe.

Written by hand: an entry is a few whole files copied out by name, for which a folder
renamed into place is all that is needed (a key-value store such as diskcache would add a
dependency and an index to keep consistent for the same).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecomp.atomic import atomic_path, strict_json
from edgecomp.errors import InputError
from edgecomp.export.base import Artifact, ExportRequest, tool_versions
from edgecomp.export.cache_entry import ENTRY, Key, entry_folders, read_entry, real_dir, \
    real_dirs
from edgecomp.hashing import file_sha256
from edgecomp.vocab import Precision

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: an entry records the facts its key was computed from
MAX_BYTES = 4 << 30  # 4 GiB: dozens of builds of a mobile-sized model
STORING = re.compile(r"\.tmp-[0-9a-f]{16}-[0-9a-f]{8}")  # an entry being written
# Every library whose version can change an exported file.
EXPORT_TOOLS = ("litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torchao", "onnx",
                "onnxruntime", "onnxscript", "numpy")


@dataclass(frozen=True)
class Reused:
    """An artifact taken from the cache: when and for which boards it was built."""

    artifact: Artifact
    key: str
    built: str  # "2026-05-02 10:14 UTC"
    built_for: str


class ArtifactCache:
    """The artifact cache at `root`; `built_for` names the boards (or command) that the
    entries written now are built for, and `rebuild` exports again, replacing entries.
    `max_bytes` bounds what its entries take."""

    def __init__(self, root: Path, *, built_for: str, rebuild: bool = False,
                 max_bytes: int = MAX_BYTES):
        self.root = Path(root)
        self.built_for = built_for
        self.rebuild = rebuild
        self.max_bytes = max_bytes

    @classmethod
    def open(cls, *, built_for: str, rebuild: bool = False) -> ArtifactCache | None:
        """The cache in the user's cache folder; None when EDGECOMP_ARTIFACT_CACHE=off."""
        from edgecomp.paths import artifact_cache_dir

        root = artifact_cache_dir()
        return None if root is None else cls(root, built_for=built_for, rebuild=rebuild)

    # -- keys ---------------------------------------------------------------------------

    def key(self, request: ExportRequest, fmt: str, *, model: dict[str, Any],
            search: dict[str, Any] | None) -> Key:
        """The key of the artifact `request` asks for; `model` is `model_identity` of its
        module, `search` the accuracy search's settings when one picks it."""
        calib = request.calib
        return Key.of({
            "cache_version": CACHE_VERSION,
            "edgecomp": edgecomp_identity(),
            "tools": exporter_versions(),
            "model": model,
            "format": fmt,
            "precision": request.precision.value,
            "technique": request.technique,
            "inputs": [spec.to_json() for spec in request.inputs],
            "options": {"io_dtype": request.io_dtype, "per_channel": request.per_channel,
                        "calibration_method": request.calibration_method.value,
                        "reduce_range": request.reduce_range,
                        "activation_symmetric": request.activation_symmetric,
                        "activation_dtype": request.activation_dtype,
                        "float_layers": request.float_layers},
            "calibration": None if calib is None or request.precision != Precision.INT8
            # The source too, as the manifest names it: a reused one never names old data.
            else {"sha256": calib.sha256, "samples": len(calib), "source": calib.source},
            "search": search,
        })

    def _folder(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    # -- reading ------------------------------------------------------------------------

    def load(self, key: Key, out_dir: Path) -> Reused | None:
        """The stored artifact copied into `out_dir` (with its manifest), or None when there
        is none, `rebuild` was asked for, or the entry is damaged or not the one `key`
        names (then one line says why, and it is removed)."""
        folder = self._folder(key.digest)
        if self.rebuild or not (real_dir(folder.parent) and real_dir(folder)):
            return None  # a folder reached through a symlink is not an entry
        try:
            entry, manifest = read_entry(folder, key)
            found = file_sha256(folder / entry.file)
            if found != entry.sha256 or manifest.sha256 != found:
                raise ValueError(f"{entry.file} does not match its record")
            path = out_dir / entry.file  # a plain name: inside `out_dir`
            with atomic_path(path) as tmp:
                shutil.copyfile(folder / entry.file, tmp)
            with atomic_path(path.with_name(f"{entry.file}.json")) as tmp:
                shutil.copyfile(folder / f"{entry.file}.json", tmp)
            os.utime(folder)  # used now: pruning removes the entries used longest ago
        except (OSError, ValueError, RecursionError, InputError) as exc:
            log.warning("ignoring the cached artifact in %s (%s); exporting it again",
                        folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        artifact = Artifact(path=path, manifest=manifest)
        return Reused(artifact=artifact, key=key.digest, built=entry.built,
                      built_for=entry.built_for)

    # -- writing ------------------------------------------------------------------------

    def store(self, key: Key, artifact: Artifact) -> None:
        """Keep `artifact` and its manifest under `key`; a failure to write is logged and
        changes nothing (the cache only saves time)."""
        folder = self._folder(key.digest)
        tmp = self.root / f".tmp-{key.digest[:16]}-{secrets.token_hex(4)}"
        try:
            for place in (folder.parent, folder):
                if os.path.lexists(place) and not real_dir(place):  # a link, or a file
                    raise OSError(f"{place} is not a folder the cache made; it is left as is")
            tmp.mkdir(parents=True)
            shutil.copyfile(artifact.path, tmp / artifact.path.name)
            shutil.copyfile(artifact.manifest_path, tmp / artifact.manifest_path.name)
            entry = {"cache_version": CACHE_VERSION, "key": key.digest,
                     "file": artifact.path.name, "sha256": artifact.manifest.sha256,
                     "format": artifact.format.value, "precision": artifact.precision.value,
                     "built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "built_for": self.built_for, "facts": key.facts}
            (tmp / ENTRY).write_text(strict_json(entry, indent=2))
            if folder.exists():  # --rebuild, or an entry found damaged
                shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, folder)  # whole, or not at all
        except OSError as exc:  # another process stored the same key first, or disk full
            if not real_dir(folder):
                log.warning("could not keep %s in the artifact cache %s: %s",
                            artifact.path.name, self.root, exc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.prune()

    def prune(self) -> None:
        """Remove the entries used longest ago until the entries take at most `max_bytes`.

        Only folders that are provably entries (`entry_folders`) are counted or removed:
        whatever else the root holds is left alone, whatever its size."""
        entries = []
        for folder in entry_folders(self.root):
            try:
                size = sum(f.lstat().st_size for f in folder.iterdir())
                entries.append((folder.lstat().st_mtime, size, folder))
            except OSError:  # removed meanwhile by another process
                continue
        total = sum(size for _, size, _ in entries)
        for _, size, folder in sorted(entries):
            if total <= self.max_bytes:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
        stale = time.time() - 3600  # temporary folders of a process killed while storing
        for tmp in real_dirs(self.root):
            try:
                if STORING.fullmatch(tmp.name) and tmp.lstat().st_mtime < stale:
                    shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                continue


def announce(reused: list[Reused]) -> None:
    """Log one line for the artifacts taken from the cache in one build (the CLI shows it)."""
    log.info("%s", describe(reused))


def describe(reused: list[Reused]) -> str:
    """One line for the artifacts taken from the cache in one build."""
    first: dict[str, str] = {}  # for whom -> when first built ("YYYY-MM-DD HH:MM" sorts)
    for r in reused:
        first[r.built_for] = min(first.get(r.built_for, r.built), r.built)
    when = "; ".join(f"built {built} for {built_for}" for built_for, built in first.items())
    keys = ", ".join(r.key[:12] for r in reused)
    return (f"reusing {len(reused)} artifact(s) {when} (cache key {keys}) instead of "
            "exporting again; --rebuild to export again")


def model_identity(source, module) -> dict[str, Any]:
    """What identifies the model fed to an exporter: the source's name, kind and hash, the
    module's weights and code (`module_sha256`), and for a factory its module's file."""
    from edgecomp.hashing import module_sha256

    identity: dict[str, Any] = {"name": source.name, "kind": source.kind,
                                "source_sha256": source.sha256}
    if module is not None:
        identity["module_sha256"] = module_sha256(module)
    if source.kind == "factory":
        factory = sys.modules.get(source.spec.partition(":")[0])
        path = getattr(factory, "__file__", None)
        identity["factory_file"] = file_sha256(Path(path)) if path and \
            Path(path).is_file() else None
    return identity


@functools.lru_cache(maxsize=1)
def edgecomp_identity() -> dict[str, str]:
    """edgecomp's version and a digest of its own code, so that a changed checkout never
    reuses artifacts an older one built."""
    import edgecomp

    package = Path(edgecomp.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return {"version": edgecomp.__version__, "code": digest.hexdigest()}


@functools.lru_cache(maxsize=1)
def exporter_versions() -> dict[str, str]:
    """The installed versions of torch and every exporter library."""
    return tool_versions(*EXPORT_TOOLS)
