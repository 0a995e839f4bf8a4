"""One entry of the artifact cache on disk: its key, its checked record, and what proves a
folder is one.

An entry is `<root>/<key[:2]>/<key>/` holding the artifact, its manifest and `entry.json`,
its record. Nothing read from the folder is trusted unchecked: the record is parsed once
into a frozen type (a file name that is a plain name, hashes as hex, the facts its key was
computed from), and a folder counts as an entry only when it is named by a key, sits in
the prefix folder of that key and holds a record of that key, none of it reached through
a symlink. Anything else in a cache root is not the cache's, and is never removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, StrictInt, StrictStr
from pydantic.dataclasses import dataclass as schema

from edgecomp.config import SCHEMA, validate
from edgecomp.errors import InputError
from edgecomp.export.base import plain_file_name
from edgecomp.export.manifest import Manifest, Sha256
from edgecomp.model.untrusted import read_regular
from edgecomp.vocab import Format, Precision

ENTRY = "entry.json"
MAX_RECORD_BYTES = 1 << 20  # a record or manifest is a few kilobytes
KEY = re.compile(r"[0-9a-f]{64}")
PREFIX = re.compile(r"[0-9a-f]{2}")


@dataclass(frozen=True)
class Key:
    """An artifact's cache key: the facts that decide its bytes (as JSON reads them back)
    and their sha256, which names the entry."""

    facts: dict[str, Any]
    digest: str

    @classmethod
    def of(cls, facts: dict[str, Any]) -> Key:
        text = json.dumps(facts, sort_keys=True)
        return cls(facts=json.loads(text), digest=hashlib.sha256(text.encode()).hexdigest())


def _plain_name(name: str) -> str:
    """`name` when it is one plain file name: copied to `-o` under it, a path would lead
    outside."""
    try:
        if name:
            return plain_file_name(name, out_dir=Path("-o"))
    except InputError:
        pass
    raise ValueError(f"{name!r} is not a plain file name")


@schema(frozen=True, config=SCHEMA)
class Entry:
    """An entry's record (`entry.json`): its file, when and for whom it was built, and the
    facts its key was computed from."""

    cache_version: StrictInt
    key: Sha256
    file: Annotated[StrictStr, AfterValidator(_plain_name)]  # never a path
    sha256: Sha256
    format: Format
    precision: Precision
    built: StrictStr  # "2026-05-02 10:14 UTC"
    built_for: StrictStr
    facts: dict[StrictStr, Any]


def read_entry(folder: Path, key: Key) -> tuple[Entry, Manifest]:
    """The record and manifest of the entry in `folder`, when it is the entry `key` names;
    ValueError or InputError saying why it is not (damaged, or another model's)."""
    entry = validate(_read_json(folder / ENTRY), Entry, source=str(folder / ENTRY))
    if entry.key != key.digest:
        raise ValueError(f"its record names the key {entry.key[:12]}")
    if entry.facts != key.facts:
        differ = sorted(name for name in key.facts.keys() | entry.facts.keys()
                        if key.facts.get(name) != entry.facts.get(name))
        raise ValueError(f"it was built from other facts than this export ({', '.join(differ)})")
    if not real_file(folder / entry.file):
        raise ValueError(f"{entry.file} is missing or not a regular file")
    described = folder / f"{entry.file}.json"
    manifest = Manifest.from_json(_read_json(described), source=str(described))
    _check_manifest(manifest, entry, key.facts)
    return entry, manifest


def _check_manifest(manifest: Manifest, entry: Entry, facts: dict[str, Any]) -> None:
    """Refuse a manifest that does not describe the file, model, format and technique the
    key's facts name (an artifact of another model, whatever its record says)."""
    model = facts.get("model") or {}
    expected = {"file": entry.file, "format": facts.get("format"),
                "model": model.get("name"), "source_sha256": model.get("source_sha256"),
                "technique": facts.get("technique")}
    if facts.get("search") is None:  # a search may keep dynamic int8 for static
        expected["precision"] = facts.get("precision")
    for name, value in expected.items():
        have = getattr(manifest, name)
        have = getattr(have, "value", have)
        if have != value:
            raise ValueError(f"its manifest describes {name} {have!r}, not {value!r}")


def _read_json(path: Path) -> Any:
    if not real_file(path):
        raise ValueError(f"{path.name} is missing or not a regular file")
    return json.loads(read_regular(path, what="cache record", max_bytes=MAX_RECORD_BYTES))


def entry_folders(root: Path) -> list[Path]:
    """The folders in `root` that are provably entries: named by a key, in the prefix
    folder of that key, holding a record of that key (of any cache version), none of them
    reached through a symlink."""
    return [folder for prefix in real_dirs(root) if PREFIX.fullmatch(prefix.name)
            for folder in real_dirs(prefix)
            if KEY.fullmatch(folder.name) and folder.name[:2] == prefix.name
            and _recorded_key(folder) == folder.name]


def _recorded_key(folder: Path) -> str | None:
    """The key an entry's record names, or None when it has no readable record."""
    try:
        data = _read_json(folder / ENTRY)
    except (OSError, ValueError, InputError):
        return None
    key = data.get("key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


def real_dir(path: Path) -> bool:
    """Whether `path` is a folder itself, not a symlink to one."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def real_file(path: Path) -> bool:
    """Whether `path` is a regular file itself, not a symlink to one."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def real_dirs(folder: Path) -> list[Path]:
    """The folders directly in `folder`, symlinks left out."""
    try:
        with os.scandir(folder) as found:
            return [Path(e.path) for e in found if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
