"""Targets: the boards you can reach, one TOML file each in your inventory.

Inventory: `paths.targets_dir()` ($EDGECOMP_TARGETS, else ~/.config/edgecomp/targets/).
Every `*.toml` there holds one `[target]` table; examples to copy are in the
repository's `examples/targets/` and are never loaded. The inventory's `known_hosts`
holds host keys trusted with `edgecomp targets trust NAME`.
"""

from __future__ import annotations

import re
from dataclasses import field, replace
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, StrictFloat, StrictInt, StrictStr
from pydantic.dataclasses import dataclass

from edgecomp import paths
from edgecomp.config import SCHEMA, find_tomls, load_toml, validate
from edgecomp.errors import InputError
from edgecomp.vocab import PowerProbeKind, RuntimeName, choices

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SAFE_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")
SAFE_PATH = re.compile(r"^[A-Za-z0-9_./~+-]{1,255}$")
FILE_PROBE = re.compile(r"^file:[A-Za-z0-9_./-]+$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def inventory_dir() -> Path:
    """The user's target inventory directory."""
    return paths.targets_dir()


def inventory_known_hosts() -> Path:
    return paths.known_hosts()


def _safe(pattern: re.Pattern) -> AfterValidator:
    # Target fields end up in remote shell commands: refuse what could break quoting.
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} has characters edgecomp does not allow there "
                             "(letters, digits, . _ - / ~ + only)")
        return value
    return AfterValidator(check)


def _workdir(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} must not contain '..'")
    return value


def _runtime(value: str) -> str:
    allowed = ["auto", *choices(RuntimeName)]
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _power_probe(value: str) -> str:
    if value not in choices(PowerProbeKind) and not FILE_PROBE.match(value):
        raise ValueError(f"{value!r} is not one of {', '.join(choices(PowerProbeKind))}, "
                         "or file:PATH")
    return value


def _env(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not ENV_NAME.match(key):
            raise ValueError(f"{key!r} must be an UPPER_CASE variable name")
    return value


Name = Annotated[StrictStr, _safe(SAFE_NAME)]
SafePath = Annotated[StrictStr, _safe(SAFE_PATH)]
Seconds = Annotated[StrictFloat, Field(gt=0)]


@dataclass(frozen=True, config=SCHEMA)
class Target:
    """A board: how to reach it over SSH and which hardware profile it is."""

    name: Name
    host: Annotated[StrictStr, _safe(SAFE_HOST)]
    profile: Name
    user: Name = "pi"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 22
    identity_file: SafePath | None = None
    python: SafePath = "python3"
    workdir: Annotated[SafePath, AfterValidator(_workdir)] = "~/.cache/edgecomp-agent"
    runtime: Annotated[StrictStr, AfterValidator(_runtime)] = "auto"  # a RuntimeName or auto
    power_probe: Annotated[StrictStr, AfterValidator(_power_probe)] = "none"  # or file:PATH
    connect_timeout: Seconds = 10.0
    command_timeout: Seconds = 900.0
    lock_timeout: Seconds = 600.0
    description: StrictStr = ""
    # Fleet groups this board belongs to: `--targets group=NAME` measures on every member.
    groups: tuple[Name, ...] = ()
    source: str = ""  # the file it was loaded from, filled in by the loader
    env: Annotated[dict[StrictStr, StrictStr], AfterValidator(_env)] = field(default_factory=dict)


@dataclass(frozen=True, config=SCHEMA)
class TargetFile:
    """A target file: one `[target]` table."""

    target: Target


def parse_target(data: dict, *, source: str) -> Target:
    """Validate a parsed target file; errors name the file and the field."""
    return replace(validate(data, TargetFile, source=source).target, source=source)


def load_target_file(path: Path) -> Target:
    return replace(load_toml(path, TargetFile).target, source=str(path))


def load_targets() -> dict[str, Target]:
    """Every target in the user's inventory, by name."""
    found: dict[str, Target] = {}
    for path in find_tomls(paths.targets_dir()).values():
        target = load_target_file(path)
        found[target.name] = target
    return found


def get_target(name: str) -> Target:
    targets = load_targets()
    if name not in targets:
        known = ", ".join(["local", *sorted(targets)])
        raise InputError(f"unknown target {name!r}; known targets: {known}. Add a board with a "
                         f"TOML file in {paths.targets_dir()} (copy one from the examples in "
                         "the edgecomp repository's examples/targets/).")
    return targets[name]
