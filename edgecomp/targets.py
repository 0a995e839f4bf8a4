"""Targets: boards you can reach, from TOML files in the repo and in your inventory.

Inventory: $EDGECOMP_TARGETS, else ~/.config/edgecomp/targets/. Every `*.toml` there
and in the repo's `targets/` holds one `[target]` table; a user file overrides a repo
file of the same name. The inventory's `known_hosts` holds host keys trusted with
`edgecomp targets trust NAME`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from edgecomp.errors import InputError

REPO_TARGETS = Path(__file__).resolve().parent.parent / "targets"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SAFE_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")
SAFE_PATH = re.compile(r"^[A-Za-z0-9_./~+-]{1,255}$")


def inventory_dir() -> Path:
    """The user's target inventory directory."""
    if os.environ.get("EDGECOMP_TARGETS"):
        return Path(os.environ["EDGECOMP_TARGETS"])
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "edgecomp" / "targets"


def inventory_known_hosts() -> Path:
    return inventory_dir() / "known_hosts"


@dataclass(frozen=True)
class Target:
    """A board: how to reach it over SSH and which hardware profile it is."""

    name: str
    host: str
    profile: str
    user: str = "pi"
    port: int = 22
    identity_file: str | None = None
    python: str = "python3"
    workdir: str = "~/.cache/edgecomp-agent"
    runtime: str = "auto"
    power_probe: str = "none"
    connect_timeout: float = 10.0
    command_timeout: float = 900.0
    lock_timeout: float = 600.0
    description: str = ""
    source: str = ""
    env: dict[str, str] = field(default_factory=dict)


_TYPES = {"name": str, "host": str, "profile": str, "user": str, "port": int,
          "identity_file": str, "python": str, "workdir": str, "runtime": str,
          "power_probe": str, "connect_timeout": (int, float), "command_timeout": (int, float),
          "lock_timeout": (int, float), "description": str, "env": dict}


def parse_target(data: dict, *, source: str) -> Target:
    """Validate one `[target]` table; errors name the file and the field."""
    table = data.get("target")
    if not isinstance(table, dict):
        raise InputError(f"{source}: a target file needs a [target] table.")
    known = {f.name for f in fields(Target)} - {"source"}
    for key, value in table.items():
        if key not in known:
            raise InputError(f"{source}: unknown field target.{key}; known fields: "
                             f"{', '.join(sorted(known))}.")
        expected = _TYPES[key]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise InputError(f"{source}: target.{key} must be "
                             f"{getattr(expected, '__name__', 'a number')}, got {value!r}.")
    for key in ("name", "host", "profile"):
        if key not in table:
            raise InputError(f"{source}: target.{key} is missing.")
    checks = [("name", SAFE_NAME), ("host", SAFE_HOST), ("user", SAFE_NAME),
              ("profile", SAFE_NAME), ("python", SAFE_PATH), ("workdir", SAFE_PATH),
              ("identity_file", SAFE_PATH), ("runtime", SAFE_NAME)]
    for key, pattern in checks:
        # Target fields end up in remote shell commands: refuse what could break quoting.
        if key in table and not pattern.match(table[key]):
            raise InputError(f"{source}: target.{key} = {table[key]!r} has characters edgecomp "
                             "does not allow there (letters, digits, . _ - / ~ + only).")
    if ".." in table.get("workdir", "").split("/"):
        raise InputError(f"{source}: target.workdir must not contain '..'.")
    if not 0 < table.get("port", 22) < 65536:
        raise InputError(f"{source}: target.port must be between 1 and 65535.")
    probe = table.get("power_probe", "none")
    if not re.match(r"^(none|file:[A-Za-z0-9_./-]+|[a-z0-9-]+)$", probe):
        raise InputError(f"{source}: target.power_probe {probe!r} is not a probe name.")
    for key, value in table.get("env", {}).items():
        if not re.match(r"^[A-Z_][A-Z0-9_]*$", key) or not isinstance(value, str):
            raise InputError(f"{source}: target.env.{key} must be an UPPER_CASE name with a "
                             "string value.")
    return Target(**table, source=source)


def load_target_file(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a readable TOML target file ({exc}).") from exc
    return parse_target(data, source=str(path))


def load_targets() -> dict[str, Target]:
    """Every target by name: repo examples first, then the user's inventory over them."""
    found: dict[str, Target] = {}
    for directory in (REPO_TARGETS, inventory_dir()):
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                target = load_target_file(path)
                found[target.name] = target
    return found


def get_target(name: str) -> Target:
    targets = load_targets()
    if name not in targets:
        known = ", ".join(["local", *sorted(targets)])
        raise InputError(f"unknown target {name!r}; known targets: {known}. Add a board with a "
                         f"TOML file in {inventory_dir()} (see targets/ for examples).")
    return targets[name]
