"""The quantization benchmark's steps as child processes, and what `edgecomp deploy` made.

Each step (a deploy, a peer, running or timing artifacts) runs in its own process so that a
tool that crashes or hangs becomes one failed row, not a failed run. `edgecomp_artifacts`
reads the deploy's result records and the manifests beside its artifacts through
edgecomp's own typed schema (`ResultRecord.from_json`, `Manifest.from_json`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from edgecomp.errors import InputError
from edgecomp.export.manifest import Manifest
from edgecomp.results.record import ResultRecord

ROOT = Path(__file__).resolve().parents[2]


def child(cmd: list[str], log_path: Path, timeout: float) -> tuple[int, str]:
    """Run a child process, its output to `log_path`; (returncode, last error line).

    The child gets this process's environment (EDGECOMP_DB, EDGECOMP_CACHE, ... as the
    caller set them) with the repository first on PYTHONPATH."""
    env = dict(os.environ, COLUMNS="400", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with open(log_path, "w") as sink:
        try:
            rc = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=env, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {timeout:.0f} s"
    if rc == 0:
        return 0, ""
    if rc < 0:
        return rc, f"crashed (signal {-rc})"
    return rc, error_line(log_path.read_text(errors="replace"))


def error_line(text: str) -> str:
    """The one-line error of a failed child: edgecomp's `error: ...` (rich wraps it over
    lines), else the last line of a Python traceback."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    at = text.rfind("error: ")
    if at >= 0 and "Traceback" not in text[at:]:
        message = text[at + len("error: "):].split("\n\n")[0]
        return " ".join(message.split())[:300]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "failed without output"


def deploy_warning(log_path: Path, fmt: str) -> str | None:
    """edgecomp's warning about `fmt` (e.g. why it wrote no int8 artifact), if it gave one."""
    if not log_path.exists():
        return None
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace"))
    for line in reversed(text.splitlines()):
        if line.startswith("WARNING") and re.search(rf"\b{fmt}\b", line):
            return "not built: edgecomp: " + re.sub(r"^WARNING\s+\S+:\s*", "", line).strip()[:300]
    return None


def describe(manifest: Manifest) -> str:
    """How an int8 artifact was made, for the table's note: calibration, layers kept in
    float, the candidate its search kept."""
    parts = []
    calibration = manifest.calibration
    if calibration is not None:
        parts += [calibration.method, "per-channel" if calibration.per_channel else "per-tensor",
                  "symmetric activations" if calibration.activation_symmetric else ""]
    if manifest.float_layers:
        parts.append(f"{len(manifest.float_layers)} layers float")
    search = manifest.search
    if search is not None and search.kept:
        parts.append(f"search kept \"{search.kept}\" of {len(search.tried)} tried"
                     + ("" if search.met else ", target not met"))
    return ", ".join(p for p in parts if p)


def edgecomp_artifacts(json_path: Path, out_dir: Path) -> dict[tuple[str, str], dict]:
    """{(format, precision): {"path" and "config", or "error"}} from an edgecomp deploy run:
    its `--json` result records, else the manifests beside the artifacts (`<file>.json`:
    a deploy that failed while measuring may still have exported)."""
    found: dict[tuple[str, str], dict] = {}
    data = json.loads(json_path.read_text()) if json_path.exists() else []
    for index, item in enumerate(data):
        record = ResultRecord.from_json(item, source=f"{json_path} (record {index})")
        key = (record.format, record.precision)
        if record.error:
            found[key] = {"error": record.error.strip().splitlines()[0]}
        elif (out_dir / record.artifact_name).exists():
            found[key] = {"path": out_dir / record.artifact_name,
                          "config": describe(record.manifest)}
    for path in out_dir.glob("*.json"):
        try:
            manifest = Manifest.from_json(json.loads(path.read_text()), source=str(path))
        except (ValueError, InputError):
            continue  # not a manifest (or not one this edgecomp wrote)
        artifact = out_dir / manifest.file
        key = (manifest.format.value, manifest.precision.value)
        if artifact.exists() and "path" not in found.get(key, {}):
            found[key] = {"path": artifact, "config": describe(manifest)}
    return found
