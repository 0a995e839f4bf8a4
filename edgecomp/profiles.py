"""Hardware profiles: TOML facts about a board family, loaded into strict frozen types.

Repo profiles live in `profiles/`; users add or override one by dropping a TOML file
in $EDGECOMP_PROFILES (else ~/.config/edgecomp/profiles/). Every field is checked once
here; a wrong one is named with its file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from edgecomp.errors import InputError

SCHEMA_VERSION = 1
REPO_PROFILES = Path(__file__).resolve().parent.parent / "profiles"


@dataclass(frozen=True)
class Cluster:
    core: str
    count: int
    max_mhz: int


@dataclass(frozen=True)
class Cpu:
    arch: str
    isa: tuple[str, ...]
    clusters: tuple[Cluster, ...]

    @property
    def cores(self) -> int:
        return sum(c.count for c in self.clusters)


@dataclass(frozen=True)
class Gpu:
    name: str
    arch: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    formats: tuple[str, ...]
    delegates: tuple[str, ...]


@dataclass(frozen=True)
class Delegate:
    name: str
    unit: str  # cpu, gpu or npu
    precisions: tuple[str, ...]
    ops: tuple[str, ...]  # high-level op kinds it accelerates; "*" means all
    notes: str = ""
    deprecated: str = ""

    def accelerates(self, op: str) -> bool:
        return "*" in self.ops or op in self.ops


@dataclass(frozen=True)
class Thermal:
    throttle_c: float
    notes: str = ""


@dataclass(frozen=True)
class PowerProbeSpec:
    kind: str
    notes: str = ""


@dataclass(frozen=True)
class Profile:
    """What a board family can do, as the planner needs it."""

    schema_version: int
    name: str
    description: str
    ram_mb: int
    storage: str
    memory_budget: float
    preferred_channel_multiple: int
    cpu: Cpu
    runtimes: tuple[RuntimeSpec, ...]
    delegates: tuple[Delegate, ...]
    thermal: Thermal
    power_probe: PowerProbeSpec
    gpu: Gpu | None = None
    source: str = ""

    def delegate(self, name: str) -> Delegate | None:
        return next((d for d in self.delegates if d.name == name), None)

    def has(self, feature: str) -> bool:
        return feature in self.cpu.isa or (self.gpu is not None and feature in self.gpu.features)


def profiles_dir() -> Path:
    if os.environ.get("EDGECOMP_PROFILES"):
        return Path(os.environ["EDGECOMP_PROFILES"])
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "edgecomp" / "profiles"


# Which fields hold nested tables or lists of tables, per type.
NESTED: dict[tuple[type, str], type] = {}
LISTS: dict[tuple[type, str], type] = {}


def _register_nested() -> None:
    NESTED.update({(Profile, "cpu"): Cpu, (Profile, "thermal"): Thermal,
                   (Profile, "power_probe"): PowerProbeSpec, (Profile, "gpu"): Gpu})
    LISTS.update({(Profile, "runtimes"): RuntimeSpec, (Profile, "delegates"): Delegate,
                  (Cpu, "clusters"): Cluster})


def _build(cls, data: Any, *, where: str, source: str):
    """Turn a TOML table into `cls`, checking keys and types; errors name file and field."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: {where or 'the file'} must be a table.")
    specs = {f.name: f for f in fields(cls) if not (cls is Profile and f.name == "source")}
    for key in data:
        if key not in specs:
            raise InputError(f"{source}: unknown field {_join(where, key)}; expected one of "
                             f"{', '.join(sorted(specs))}.")
    values = {}
    for name, spec in specs.items():
        path = _join(where, name)
        if name not in data:
            if spec.default is MISSING:
                raise InputError(f"{source}: {path} is missing.")
            continue
        values[name] = _convert(cls, spec, data[name], where=path, source=source)
    return cls(**values)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(cls, spec, value: Any, *, where: str, source: str):
    if (cls, spec.name) in NESTED:
        return _build(NESTED[(cls, spec.name)], value, where=where, source=source)
    if (cls, spec.name) in LISTS:
        if not isinstance(value, list) or not value:
            raise InputError(f"{source}: {where} must be a non-empty list of tables.")
        return tuple(_build(LISTS[(cls, spec.name)], item, where=f"{where}[{index}]",
                            source=source) for index, item in enumerate(value))
    if spec.type.startswith("tuple[str"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{source}: {where} must be a list of strings.")
        return tuple(value)
    expected = {"int": int, "float": (int, float), "str": str}[spec.type]
    if isinstance(value, bool) or not isinstance(value, expected):
        raise InputError(f"{source}: {where} must be {spec.type}, got {value!r}.")
    return float(value) if spec.type == "float" else value


def load_profile_file(path: Path) -> Profile:
    """Load and validate one profile file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a readable TOML profile ({exc}).") from exc
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version must be {SCHEMA_VERSION}, got {version!r}.")
    profile = _build(Profile, data, where="", source=str(path))
    if not 0 < profile.memory_budget <= 1:
        raise InputError(f"{path}: memory_budget must be a fraction in (0, 1].")
    names = {d.name for d in profile.delegates}
    for runtime in profile.runtimes:
        for delegate in runtime.delegates:
            if delegate not in names:
                raise InputError(f"{path}: runtime {runtime.name} names delegate {delegate!r}, "
                                 "which has no [[delegates]] table.")
    return replace(profile, source=str(path))


_register_nested()


def load_profiles() -> dict[str, Profile]:
    """Every profile by name; a user profile overrides the repo's of the same name."""
    found: dict[str, Profile] = {}
    for directory in (REPO_PROFILES, profiles_dir()):
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                profile = load_profile_file(path)
                found[profile.name] = profile
    return found


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise InputError(f"unknown profile {name!r}; known profiles: "
                         f"{', '.join(sorted(profiles))}. Add one as a TOML file in "
                         f"{profiles_dir()}.")
    return profiles[name]
