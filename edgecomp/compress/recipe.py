"""Recipes: a compression run as data (TOML), stored next to the result it produced.

    name = "prune-distill-int8"
    [[pass]]
    name = "prune.structured"
    ratio = 0.5
    [export]
    precision = "int8"

A bare name (`structured-50`) resolves to `<name>.toml` in the user's recipes directory
($EDGECOMP_RECIPES, else ~/.config/edgecomp/recipes/) or else in the shipped recipes
(package data, `edgecomp/shipped/recipes/`). The file's layout is checked by the
`edgecomp.config` schema loader; each pass checks its own options when it is built.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictStr
from pydantic.dataclasses import dataclass
from torch import nn

from edgecomp import paths
from edgecomp.compress.base import PASSES, DataContext, PassReport, make_pass
from edgecomp.config import SCHEMA, field_error, find_tomls, key_value, load_toml
from edgecomp.errors import InputError
from edgecomp.hardware.targets import SAFE_NAME
from edgecomp.vocab import Format, Precision


# The most [[pass]] tables a recipe may hold. Real recipes chain a handful; far more is a
# mistake or a generated file that would run for hours (each pass may fine-tune).
MAX_PASSES = 64


def load_all_passes() -> None:
    """Import every module of edgecomp.compress so the registry is complete."""
    PASSES.load()


@dataclass(frozen=True, config=SCHEMA)
class ExportDefaults:
    """A recipe's `[export]` table: the precision and formats its result is meant for.

    A field left out is None: the user's flags or the plan decide it.
    """

    precision: Precision | None = None
    formats: Annotated[tuple[Format, ...], Field(min_length=1)] | None = None

    def to_json(self) -> dict[str, Any]:
        """The table as the recipe wrote it: only the keys it set, values as text."""
        data: dict[str, Any] = {}
        if self.precision is not None:
            data["precision"] = self.precision
        if self.formats is not None:
            data["formats"] = list(self.formats)
        return data


def check_recipe_name(name: str) -> str:
    """A recipe name names artifact files (`<model>.<recipe>.int8.tflite`): it must be one
    safe file-name part, never a path."""
    if not SAFE_NAME.match(name):
        raise ValueError(f"{name!r} is not a recipe name: use letters, digits, '.', '_' and "
                         "'-' only (up to 63, starting with a letter or digit), since it "
                         "names the artifact files")
    return name


RecipeName = Annotated[StrictStr, AfterValidator(check_recipe_name)]


@dataclass(frozen=True, config=SCHEMA)
class RecipeFile:
    """The layout of a recipe file; each `[[pass]]` table's options belong to its pass."""

    name: RecipeName | None = None
    description: StrictStr = ""
    passes: Annotated[tuple[dict[str, Any], ...], Field(alias="pass")] = ()
    export: ExportDefaults = ExportDefaults()


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    passes: tuple[tuple[str, dict[str, Any]], ...]
    export: ExportDefaults
    text: str
    source: str


def recipes_dir() -> Path:
    """Where the user's own recipes live (see `edgecomp.paths`)."""
    return paths.recipes_dir()


def known_recipes() -> dict[str, Path | Traversable]:
    """Every recipe file by name; a user recipe overrides the shipped one of the same name."""
    return find_tomls(paths.shipped("recipes"), paths.recipes_dir())


def resolve(spec: str) -> Path | Traversable:
    """A recipe file path, or a bare recipe name, to the file it means."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"recipe file {path} does not exist.")
        return path
    known = known_recipes()
    if spec not in known:
        raise InputError(f"unknown recipe {spec!r}; known recipes: {', '.join(sorted(known))}. "
                         f"Add your own as a TOML file in {paths.recipes_dir()}.")
    return known[spec]


def load_recipe(spec: str) -> Recipe:
    """Load and validate a recipe file or name: see `parse_recipe`."""
    path = resolve(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc}).") from exc
    return parse_recipe(text, source=str(path), default_name=path.name.removesuffix(".toml"))


def parse_recipe(text: str, *, source: str, default_name: str) -> Recipe:
    """Validate recipe TOML: every pass is built once here to check its options.

    `source` names where the text came from in every error (a file, or the CLI flags).
    """
    load_all_passes()
    layout = load_toml(text, RecipeFile, source=source)
    if not layout.passes:
        raise field_error(source, "pass", "a recipe needs at least one [[pass]] table")
    if len(layout.passes) > MAX_PASSES:
        raise field_error(source, "pass", f"a recipe holds at most {MAX_PASSES} [[pass]] "
                          f"tables, this one has {len(layout.passes)}; keep the passes the "
                          "model needs")
    passes = []
    for index, table in enumerate(layout.passes):
        options = dict(table)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise field_error(source, f"pass[{index}].name",
                              "required: the name of a compression pass")
        try:
            make_pass(name, options)
        except InputError as exc:
            raise field_error(source, f"pass[{index}]", str(exc)) from exc
        passes.append((name, options))
    for index, (name, _) in enumerate(passes[:-1]):
        # A pass that ties the weights to the export (qat, fp16, ...) says so itself.
        if getattr(PASSES[name], "must_come_last", False):
            following = passes[index + 1][0]
            raise field_error(source, f"pass[{index + 1}]",
                              f"{following!r} comes after {name!r}, which must be last (it "
                              f"ties the weights to the export); move {name!r} to the end")
    return Recipe(name=layout.name or default_name, description=layout.description,
                  passes=tuple(passes), export=layout.export, text=text, source=source)


def parse_pass(text: str) -> tuple[str, dict]:
    """'prune.magnitude sparsity=0.9 scope="global"' to (name, options); values are TOML."""
    if not text.split():
        raise InputError("--pass needs a pass name, e.g. --pass 'prune.magnitude sparsity=0.9'.")
    name, *pairs = text.split()
    options = {}
    for pair in pairs:
        key, value = key_value(pair, flag=f"--pass {text!r}: option",
                               example="key=value (options are key=value pairs)")
        try:
            options[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            options[key] = value  # a bare word such as scope=global
    return name, options


def passes_recipe_text(passes: list[str]) -> str:
    """A recipe equivalent to --pass flags, so CLI runs are stored like recipe runs."""
    lines = ['name = "cli"']
    for text in passes:
        name, options = parse_pass(text)
        lines += ["", "[[pass]]", f"name = {json.dumps(name)}"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def recipe_from_passes(passes: list[str]) -> Recipe:
    """The recipe that --pass options spell out, in order ("cli" unless named)."""
    return parse_recipe(passes_recipe_text(passes), source="--pass options (in order)",
                        default_name="cli")


def run_recipe(recipe: Recipe, model: nn.Module,
               ctx: DataContext) -> tuple[nn.Module, list[PassReport]]:
    """Apply the recipe's passes in order; the original model stays the teacher."""
    reports = []
    for name, options in recipe.passes:
        compression_pass = make_pass(name, dict(options))
        if ctx.progress is not None:  # a phase of its own: a pass can take many minutes
            ctx.progress(f"pass {name}", 0, 1)
        model, report = compression_pass.apply(model, ctx)
        if ctx.progress is not None:
            ctx.progress(f"pass {name}", 1, 1)
        reports.append(report)
    return model, reports


__all__ = ["PASSES", "ExportDefaults", "Recipe", "known_recipes", "load_all_passes",
           "load_recipe", "parse_pass", "parse_recipe", "recipe_from_passes", "resolve",
           "run_recipe"]
