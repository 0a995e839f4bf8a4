"""Recipes: a compression run as data (TOML), stored next to the result it produced.

    name = "prune-distill-int8"
    [[pass]]
    name = "prune.structured"
    ratio = 0.5
    [export]
    precision = "int8"

A bare name (`structured-50`) resolves to recipes/<name>.toml in the repo or in
$EDGECOMP_RECIPES (else ~/.config/edgecomp/recipes/).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

import edgecomp.compress
from edgecomp.compress.base import PASSES, DataContext, PassReport, make_pass
from edgecomp.errors import InputError

REPO_RECIPES = Path(__file__).resolve().parent.parent.parent / "recipes"
# Passes after which weights must not change: their result is tied to the export.
TERMINAL = {"qat", "fp16", "binary", "cluster"}


def load_all_passes() -> None:
    """Import every module of edgecomp.compress so the registry is complete."""
    for info in pkgutil.iter_modules(edgecomp.compress.__path__):
        importlib.import_module(f"edgecomp.compress.{info.name}")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    passes: tuple[tuple[str, dict[str, Any]], ...]
    export: dict[str, Any]
    text: str
    source: str


def recipes_dir() -> Path:
    if os.environ.get("EDGECOMP_RECIPES"):
        return Path(os.environ["EDGECOMP_RECIPES"])
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "edgecomp" / "recipes"


def resolve(spec: str) -> Path:
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"recipe file {path} does not exist.")
        return path
    for directory in (recipes_dir(), REPO_RECIPES):
        candidate = directory / f"{spec}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for d in (REPO_RECIPES, recipes_dir()) if d.is_dir()
                    for p in d.glob("*.toml")})
    raise InputError(f"unknown recipe {spec!r}; known recipes: {', '.join(known)}.")


def load_recipe(spec: str) -> Recipe:
    """Load and validate a recipe file or name: see `parse_recipe`."""
    path = resolve(spec)
    return parse_recipe(path.read_text(), source=str(path), default_name=path.stem)


def parse_recipe(text: str, *, source: str, default_name: str) -> Recipe:
    """Validate recipe TOML: every pass is built once here to check its options.

    `source` names where the text came from in every error (a file, or the CLI flags).
    """
    load_all_passes()
    path = source
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}).") from exc
    unknown = set(data) - {"name", "description", "pass", "export"}
    if unknown:
        raise InputError(f"{path}: unknown keys {sorted(unknown)}; a recipe has name, "
                         "description, [[pass]] tables and an optional [export] table.")
    tables = data.get("pass", [])
    if not isinstance(tables, list) or not tables:
        raise InputError(f"{path}: a recipe needs at least one [[pass]] table.")
    passes = []
    for index, table in enumerate(tables):
        options = dict(table)
        name = options.pop("name", None)
        if name is None:
            raise InputError(f"{path}: [[pass]] number {index + 1} has no name.")
        try:
            make_pass(name, options)
        except InputError as exc:
            raise InputError(f"{path}: [[pass]] number {index + 1}: {exc}") from exc
        passes.append((name, options))
    for index, (name, _) in enumerate(passes[:-1]):
        if name in TERMINAL:
            following = passes[index + 1][0]
            raise InputError(f"{path}: {following!r} comes after {name!r}, which must be last "
                             f"(it ties the weights to the export); move {name!r} to the end.")
    export = data.get("export", {})
    if set(export) - {"precision", "formats"}:
        raise InputError(f"{path}: [export] takes precision and formats.")
    return Recipe(name=data.get("name", default_name), description=data.get("description", ""),
                  passes=tuple(passes), export=export, text=text, source=source)


def run_recipe(recipe: Recipe, model: nn.Module,
               ctx: DataContext) -> tuple[nn.Module, list[PassReport]]:
    """Apply the recipe's passes in order; the original model stays the teacher."""
    reports = []
    for name, options in recipe.passes:
        model, report = make_pass(name, dict(options)).apply(model, ctx)
        reports.append(report)
    return model, reports


__all__ = ["PASSES", "Recipe", "load_all_passes", "load_recipe", "parse_recipe", "run_recipe"]
