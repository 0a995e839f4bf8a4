"""The package's shape: small modules, folders that say the flow, transports below the stages,
a shallow import graph, and a README map that names every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "edgecomp"
MAX_LINES = 400
MAX_DEPTH = 12
# What a transport must not know: the stages that build and plan what it carries.
ABOVE_TRANSPORTS = ("edgecomp.pipeline", "edgecomp.export", "edgecomp.compress",
                    "edgecomp.quantize", "edgecomp.hardware.plan", "edgecomp.hardware.planner",
                    "edgecomp.commands", "edgecomp.results")


def modules() -> dict[str, Path]:
    """Module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `name` imports anywhere in it (functions included, TYPE_CHECKING
    blocks not: they run only under a type checker)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[:len(name.split(".")) - node.level
                                         + (path.name == "__init__.py")]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def room(module: str) -> str:
    """A module's room in the house: its top folder under edgecomp/, or the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else module


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these along their seams: {long}"


def test_the_root_holds_only_the_foundations():
    root = sorted(name for name, path in modules().items()
                  if path.parent == PACKAGE and path.name != "__init__.py")
    assert root == ["edgecomp.atomic", "edgecomp.cli", "edgecomp.config", "edgecomp.errors",
                    "edgecomp.hashing", "edgecomp.paths", "edgecomp.registry", "edgecomp.vocab"]


def test_folders_import_each_other_in_one_direction_at_most_12_deep():
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        edges.setdefault(room(name), set()).update(
            room(t) for t in imports(name, path, known) if room(t) != room(name))
    both = sorted((a, b) for a, targets in edges.items() for b in targets
                  if a < b and a in edges.get(b, ()))
    assert both == [], f"folders importing each other: {both}"

    def depth(node: str) -> int:
        return 1 + max((depth(t) for t in edges.get(node, ())), default=0)

    deepest = max(edges, key=depth)
    assert depth(deepest) <= MAX_DEPTH, deepest
    # The command line sits on the pipeline, the pipeline on the stages, the stages on
    # the model: the order the flow reads in.
    assert depth("edgecomp.cli") > depth("edgecomp.commands") > depth("edgecomp.pipeline") \
        > depth("edgecomp.remote") > depth("edgecomp.hardware") > depth("edgecomp.model")


def test_no_transport_imports_a_stage_above_it():
    known = modules()
    found = {name: sorted(t for t in imports(name, path, known)
                          if t.startswith(ABOVE_TRANSPORTS))
             for name, path in known.items() if name.startswith("edgecomp.remote")}
    assert {name: found for name, found in found.items() if found} == {}


def test_the_readme_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Architecture\n.*?```\n(edgecomp/\n.*?)```", readme, re.S).group(1)
    entries: dict[str, str] = {}  # each top entry (a folder or root modules) with its text
    current = None
    for line in block.splitlines()[1:]:
        if re.match(r"  \S", line):
            current = line.split()[0]
            entries[current] = ""
        if current is not None:
            entries[current] += " " + line
    missing = []
    for name, path in modules().items():
        relative = path.relative_to(PACKAGE).parts
        if relative[-1] == "__init__.py":
            continue
        if len(relative) == 1:
            text = " ".join(v for k, v in entries.items() if not k.endswith("/"))
        else:
            text = entries.get(relative[0] + "/", "")
        words = re.sub(r"[,;:()]", " ", text).split()
        if relative[-1] not in words or any(f"{folder}/" not in words and
                                            f"{folder}/" not in entries
                                            for folder in relative[:-1]):
            missing.append("/".join(relative))
    assert missing == [], f"add these to the README's architecture map: {missing}"
