"""The agent as one deterministic zipapp: the same bytes, and sha256, on every machine.

Both transports run this file (`python edgecomp-agent-<sha16>.pyz info|measure|run`), so
the local target measures with exactly the code a board gets. The archive is written
with `zipfile` directly because `zipapp` stamps each entry with its file's mtime:
entries here are sorted, dated 1980-01-01, mode 0644 and stored uncompressed (deflate
output may differ between zlib versions).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import edgecomp.agent
from edgecomp.atomic import atomic_path
from edgecomp.errors import DeviceError
from edgecomp.paths import cache_dir

AGENT_DIR = Path(edgecomp.agent.__file__).resolve().parent
REGISTRY = AGENT_DIR.parent / "registry.py"  # stdlib-only, shared with the host
SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
# The zip's root: run the package's entry point; `edgecomp` is a stub package inside.
ROOT_MAIN = b'"""edgecomp agent zipapp entry point."""\nimport sys\n\n' \
            b"from edgecomp.agent.__main__ import main\n\nsys.exit(main())\n"
STUB_INIT = b'"""Only the on-device agent of edgecomp, bundled."""\n'


def agent_sources() -> dict[str, bytes]:
    """Archive name -> bytes of every file the zipapp holds: the agent package's .py files
    and the registry module it finds its runtimes and power probes with."""
    files = {"__main__.py": ROOT_MAIN, "edgecomp/__init__.py": STUB_INIT,
             "edgecomp/registry.py": REGISTRY.read_bytes()}
    for path in sorted(AGENT_DIR.rglob("*.py")):
        relative = path.relative_to(AGENT_DIR)
        if "__pycache__" not in relative.parts:
            files[f"edgecomp/agent/{relative.as_posix()}"] = path.read_bytes()
    return files


def build_pyz_bytes(files: dict[str, bytes]) -> bytes:
    """The zipapp's bytes: a shebang, then sorted entries with fixed dates and modes."""
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, whatever builds it
            archive.writestr(info, files[name])
    return buffer.getvalue()


def agent_pyz() -> Path:
    """The agent zipapp for this edgecomp, built once per content and kept in the cache."""
    data = build_pyz_bytes(agent_sources())
    name = f"edgecomp-agent-{hashlib.sha256(data).hexdigest()[:16]}.pyz"
    for directory in (cache_dir() / "agent", Path(tempfile.gettempdir()) / "edgecomp-agent"):
        path = directory / name
        if path.is_file() and path.read_bytes() == data:
            return path
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                os.chmod(tmp, 0o644)
            return path
        except OSError:
            continue  # an unwritable cache: fall back to the temp directory
    raise DeviceError(f"cannot write the agent bundle {name} to {cache_dir()} or the temp "
                      "directory; check their permissions or set EDGECOMP_CACHE.")
