"""Targets: the boards you can reach, one TOML file each in your inventory.

Inventory: `paths.targets_dir()` ($EDGECOMP_TARGETS, else ~/.config/edgecomp/targets/).
Every `*.toml` there holds one `[target]` table; examples to copy are in the
repository's `examples/targets/` and are never loaded. The inventory's `known_hosts`
holds host keys trusted with `edgecomp targets trust NAME`.

A board in a shared lab that runs labgrid is a target with a `[target.labgrid]` table
instead of a `host`: each run reserves and acquires its labgrid place, reads the SSH
address from the place's NetworkService resource and releases the place afterwards
(`edgecomp.remote.labgrid`).
"""

from __future__ import annotations

import re
from dataclasses import field, replace
from pathlib import Path
from typing import Annotated

from pydantic import (AfterValidator, Field, StrictFloat, StrictInt, StrictStr,
                      model_validator)
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
# labgrid's tag keys (labgrid.remote.common.TAG_KEY, matched whole); values are kept to
# what a `key=value` reservation filter carries unchanged.
TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
COORDINATOR = re.compile(r"^[A-Za-z0-9\[][A-Za-z0-9_.:\[\]-]{0,254}$")


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


def _tags(value: dict[str, str]) -> dict[str, str]:
    for key, tag in value.items():
        if not TAG_KEY.match(key):
            raise ValueError(f"{key!r} is not a labgrid tag name (lower-case letters, digits "
                             "and _, starting with a letter, at least two characters)")
        if not TAG_VALUE.match(tag):
            raise ValueError(f"{key} = {tag!r}: a tag value has letters, digits, . _ - only")
    return value


def _coordinator(value: str) -> str:
    if not COORDINATOR.match(value):
        raise ValueError(f"{value!r} is not a coordinator address (HOST:PORT)")
    return value


Name = Annotated[StrictStr, _safe(SAFE_NAME)]
SafePath = Annotated[StrictStr, _safe(SAFE_PATH)]
# Waits and time limits: finite, above 0 and at most a day (a connection's at most 5
# minutes); a larger one never ends in practice.
Seconds = Annotated[StrictFloat, Field(gt=0, le=24 * 3600, allow_inf_nan=False)]
ConnectSeconds = Annotated[StrictFloat, Field(gt=0, le=300, allow_inf_nan=False)]


@dataclass(frozen=True, config=SCHEMA)
class LabgridPlace:
    """A board shared through labgrid: the place that holds it, by name or by tags."""

    place: Name | None = None  # reserve this place
    tags: Annotated[dict[StrictStr, StrictStr], AfterValidator(_tags)] = \
        field(default_factory=dict)  # or any place that has all these tags
    # HOST:PORT of labgrid-coordinator; None: $LG_COORDINATOR, else labgrid's default
    coordinator: Annotated[StrictStr, AfterValidator(_coordinator)] | None = None
    timeout: Seconds = 600.0  # how long to wait for the place to become free
    user: Name | None = None  # log in as this user instead of the NetworkService's

    @model_validator(mode="after")
    def _place_or_tags(self) -> "LabgridPlace":
        if (self.place is None) == (not self.tags):
            raise ValueError("give either place = NAME or tags = { KEY = VALUE, ... }"
                             + (", not both" if self.place else ""))
        return self

    def describe(self) -> str:
        """The place as a sentence names it: `place pi4-a` or `a place tagged board=pi4`."""
        if self.place is not None:
            return f"place {self.place}"
        return "a place tagged " + ", ".join(f"{k}={v}" for k, v in sorted(self.tags.items()))


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class Target:
    """A board: how to reach it over SSH and which hardware profile it is."""

    name: Name
    # The board's address; for a labgrid board, filled in from its place for each run.
    host: Annotated[StrictStr, _safe(SAFE_HOST)] | None = None
    profile: Name
    user: Name = "pi"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 22
    identity_file: SafePath | None = None
    python: SafePath = "python3"
    workdir: Annotated[SafePath, AfterValidator(_workdir)] = "~/.cache/edgecomp-agent"
    runtime: Annotated[StrictStr, AfterValidator(_runtime)] = "auto"  # a RuntimeName or auto
    power_probe: Annotated[StrictStr, AfterValidator(_power_probe)] = "none"  # or file:PATH
    connect_timeout: ConnectSeconds = 10.0
    command_timeout: Seconds = 900.0
    lock_timeout: Seconds = 600.0
    description: StrictStr = ""
    # Fleet groups this board belongs to: `--targets group=NAME` measures on every member.
    groups: tuple[Name, ...] = ()
    labgrid: LabgridPlace | None = None  # a shared lab's board: host and port from its place
    source: str = ""  # the file it was loaded from, filled in by the loader
    env: Annotated[dict[StrictStr, StrictStr], AfterValidator(_env)] = field(default_factory=dict)

    @model_validator(mode="after")
    def _reachable(self) -> "Target":
        if self.host is None and self.labgrid is None:
            raise ValueError("needs host = ADDRESS, or a [target.labgrid] table naming the "
                             "labgrid place that holds the board")
        return self


@dataclass(frozen=True, config=SCHEMA)
class TargetFile:
    """A target file: one `[target]` table."""

    target: Target

    @model_validator(mode="before")
    @classmethod
    def _labgrid_gives_the_address(cls, data):
        # Checked on the file's own keys: a labgrid board's host, port and user come from
        # its place's NetworkService, so the file must not name others that would be ignored.
        table = data.get("target") if isinstance(data, dict) else None
        if isinstance(table, dict) and "labgrid" in table:
            given = [key for key in ("host", "port", "user") if key in table]
            if given:
                raise ValueError(f"{', '.join('target.' + key for key in given)}: a labgrid "
                                 "board's address and user come "
                                 "from its place's NetworkService resource; remove "
                                 f"{'them' if len(given) > 1 else 'it'} (target.labgrid.user "
                                 "logs in as another user)")
        return data


def parse_target(data: dict, *, source: str) -> Target:
    """Validate a parsed target file; errors name the file and the field."""
    return replace(validate(data, TargetFile, source=source).target, source=source)


def load_target_file(path: Path) -> Target:
    return replace(load_toml(path, TargetFile).target, source=str(path))


def load_targets() -> dict[str, Target]:
    """Every target in the user's inventory, by name; two files declaring one name are
    refused (naming both), since either board would silently take the other's runs."""
    found: dict[str, Target] = {}
    for path in find_tomls(paths.targets_dir()).values():
        target = load_target_file(path)
        if target.name in found:
            raise InputError(f"{found[target.name].source} and {path} both declare the target "
                             f"name {target.name!r}; give each board its own name.")
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
