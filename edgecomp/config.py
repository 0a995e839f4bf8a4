"""One schema loader for profiles, targets and recipes: TOML in, frozen checked values out.

A schema is a frozen pydantic dataclass declared with `config=SCHEMA`: unknown keys are
refused, closed vocabularies are `edgecomp.vocab` enums (stored as their text, so values
print and compare as plain strings), and `dataclasses.replace`/`asdict` keep working.
Every problem becomes one `InputError` sentence, `<file>: <field.path>: <problem>.`

By convention a schema's `source` field is filled in by its loader with where the data
came from; it is never offered to users as a key.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import tomllib
import types
import typing
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from edgecomp.errors import InputError
from edgecomp.vocab import choices

T = TypeVar("T")

SCHEMA = ConfigDict(extra="forbid", use_enum_values=True)
"""The pydantic config of every schema: `@dataclass(frozen=True, config=SCHEMA)`."""

_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")
# Problems with a fixed wording; the offending value is appended.
_WORDING = {
    "int_type": "must be an integer", "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number", "float_type": "must be a number",
    "float_parsing": "must be a number", "string_type": "must be a string",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "list_type": "must be a list", "tuple_type": "must be a list",
    "dict_type": "must be a table", "dataclass_type": "must be a table",
    "model_type": "must be a table",
}


def field_error(source: str, where: str, problem: str) -> InputError:
    """The one-sentence error for a bad field: `<source>: <where>: <problem>.`"""
    place = f"{source}: {where}: " if where else f"{source}: "
    return InputError(place + problem.rstrip(".") + ".")


def validate(data: Any, model: type[T], *, source: str) -> T:
    """Check already-parsed data (a TOML table) against a schema."""
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        # One problem at a time; the rest often follow from it. An unknown key goes first:
        # a misspelt key is also reported as a missing one, but the misspelling is the cause.
        first = min(exc.errors(), key=lambda e: e["type"] not in _UNKNOWN_KEY)
        raise field_error(source, _where(first["loc"]), _problem(first, model)) from exc


def load_toml(path_or_text: Path | Traversable | str, model: type[T], *,
              source: str | None = None) -> T:
    """Read TOML (a file, or text when given a `str`) and check it against a schema.

    `source` names the data in errors; it defaults to the file's path and is required
    for text.
    """
    if isinstance(path_or_text, str):
        if source is None:
            raise TypeError("load_toml needs source= to name TOML given as text")
        text = path_or_text
    else:
        source = source or str(path_or_text)
        try:
            text = path_or_text.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: cannot be read ({exc}).") from exc
    return validate(parse_toml(text, source=source), model, source=source)


def parse_toml(text: str, *, source: str) -> dict[str, Any]:
    """TOML text to a table; a syntax error names the source and the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc}).") from exc


def key_value(text: str, *, flag: str, example: str) -> tuple[str, str]:
    """A `KEY=VALUE` given to a flag (`--set`, `--input-shape NAME=DIMS`, `--input-value`,
    a `--pass` option), split at its first `=`, the key stripped; one sentence naming the
    flag and how to write it when it is not such a pair."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"{flag} {text!r}: write it as {example}.")
    return key.strip(), value


def find_tomls(*directories: Path | Traversable) -> dict[str, Path | Traversable]:
    """Every `<name>.toml` in the directories by name; a later directory wins a name.

    Called as `find_tomls(paths.shipped("profiles"), paths.profiles_dir())`, so a user's
    file overrides the shipped one of the same name. Missing directories are skipped.
    """
    found: dict[str, Path | Traversable] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml") and entry.is_file():
                found[entry.name.removesuffix(".toml")] = entry
    return found


@functools.cache
def _adapter(model: type) -> TypeAdapter:
    return TypeAdapter(model)


def _where(loc: Sequence[str | int]) -> str:
    """('delegates', 0, 'ops', 3) to 'delegates[0].ops[3]'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(error: dict, model: type) -> str:
    kind, value, context = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in _UNKNOWN_KEY:
        known = _keys_at(model, error["loc"][:-1])
        return "unknown key" + (f"; expected one of {', '.join(known)}" if known else "")
    if kind == "missing":
        return "required, but missing"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters long"
    if kind == "string_unicode":
        return "must be valid Unicode text (it holds a lone surrogate)"
    if kind == "enum":
        vocabulary = _type_at(model, error["loc"])
        allowed = ", ".join(choices(vocabulary)) if _is_enum(vocabulary) else \
            context.get("expected", "")
        return f"{value!r} is not one of {allowed}"
    if kind == "value_error" and "error" in context:
        return str(context["error"])
    wording = _WORDING.get(kind) or error["msg"].replace("Input should be", "must be", 1)
    return f"{wording}, got {value!r}"


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and `X | None` down to X."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp


def _type_at(model: Any, loc: Sequence[str | int]) -> Any:
    """The declared type at a location in a schema, or None where it cannot be followed."""
    tp = _unwrap(model)
    for part in loc:
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if args else None
        elif dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(part)
        else:
            return None
        tp = _unwrap(tp)
    return tp


def _keys_at(model: Any, loc: Sequence[str | int]) -> list[str]:
    """The keys the table at `loc` takes (the loader-filled `source` left out)."""
    table = _type_at(model, loc)
    if not dataclasses.is_dataclass(table):
        return []
    hints = typing.get_type_hints(table, include_extras=True)
    return [_alias(hints[f.name]) or f.name for f in dataclasses.fields(table)
            if f.name != "source"]


def _alias(tp: Any) -> str | None:
    """The TOML key of a field declared `Annotated[..., Field(alias=KEY)]`."""
    metadata = getattr(tp, "__metadata__", ())
    return next((m.alias for m in metadata if getattr(m, "alias", None)), None)
