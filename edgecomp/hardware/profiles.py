"""Hardware profiles: TOML facts about a board family, loaded into strict frozen types.

Shipped profiles are package data (`edgecomp/shipped/profiles/`); users add or override
one by dropping a TOML file in `paths.profiles_dir()` ($EDGECOMP_PROFILES, else
~/.config/edgecomp/profiles/). Every field is checked once, by `edgecomp.config`; op
kinds, precisions, runtimes, delegates, units, ISA/GPU features and power probes must be
`edgecomp.vocab` values. A wrong field is named with its file.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt, StrictStr, model_validator
from pydantic.dataclasses import dataclass

from edgecomp import paths
from edgecomp.config import SCHEMA, find_tomls, load_toml
from edgecomp.errors import InputError
from edgecomp.vocab import (DelegateName, Format, GpuFeature, IsaFeature, OpKind,
                            PowerProbeKind, Precision, RuntimeName, Unit)

SCHEMA_VERSION = 1
NONEMPTY = Field(min_length=1)
# Plausible bounds of a board's facts; a value outside is a typo (MHz for GHz, GB for MB)
# that would mislead every plan made from the profile.
Cores = Annotated[StrictInt, Field(ge=1, le=1024)]
MegaHertz = Annotated[StrictInt, Field(ge=1, le=10_000)]
RamMegabytes = Annotated[StrictInt, Field(ge=16, le=2**24)]  # 16 MB .. 16 TB
ChannelMultiple = Annotated[StrictInt, Field(ge=1, le=1024)]
Celsius = Annotated[StrictFloat, Field(ge=20, le=150)]  # throttling: skin 45, silicon ~100


def profiles_dir() -> Path:
    """Where the user's own profiles live (see `edgecomp.paths`)."""
    return paths.profiles_dir()


@dataclass(frozen=True, config=SCHEMA)
class Cluster:
    core: StrictStr
    count: Cores
    max_mhz: MegaHertz


@dataclass(frozen=True, config=SCHEMA)
class Cpu:
    arch: StrictStr
    isa: tuple[IsaFeature, ...]
    clusters: Annotated[tuple[Cluster, ...], NONEMPTY]

    @property
    def cores(self) -> int:
        return sum(c.count for c in self.clusters)


@dataclass(frozen=True, config=SCHEMA)
class Gpu:
    name: StrictStr
    arch: StrictStr
    features: tuple[GpuFeature, ...]


@dataclass(frozen=True, config=SCHEMA)
class RuntimeSpec:
    name: RuntimeName
    formats: Annotated[tuple[Format, ...], NONEMPTY]
    delegates: Annotated[tuple[DelegateName, ...], NONEMPTY]


@dataclass(frozen=True, config=SCHEMA)
class Delegate:
    name: DelegateName
    unit: Unit
    precisions: Annotated[tuple[Precision, ...], NONEMPTY]
    ops: Annotated[tuple[OpKind, ...], NONEMPTY]  # op kinds it accelerates; "*" means all
    notes: StrictStr = ""
    deprecated: StrictStr = ""  # why not to use it; empty while it is current

    def accelerates(self, op: str) -> bool:
        return OpKind.ALL in self.ops or op in self.ops


@dataclass(frozen=True, config=SCHEMA)
class Thermal:
    throttle_c: Celsius
    notes: StrictStr = ""


@dataclass(frozen=True, config=SCHEMA)
class PowerProbeSpec:
    kind: PowerProbeKind
    notes: StrictStr = ""


@dataclass(frozen=True, config=SCHEMA)
class Profile:
    """What a board family can do, as the planner needs it."""

    schema_version: Literal[1]
    name: StrictStr
    description: StrictStr
    ram_mb: RamMegabytes
    storage: StrictStr
    memory_budget: Annotated[StrictFloat, Field(gt=0, le=1)]  # fraction of RAM for the model
    preferred_channel_multiple: ChannelMultiple
    cpu: Cpu
    runtimes: Annotated[tuple[RuntimeSpec, ...], NONEMPTY]
    delegates: Annotated[tuple[Delegate, ...], NONEMPTY]
    thermal: Thermal
    power_probe: PowerProbeSpec
    gpu: Gpu | None = None
    source: str = ""  # the file it was loaded from, filled in by the loader

    @model_validator(mode="after")
    def _runtimes_name_known_delegates(self) -> Profile:
        names = {d.name for d in self.delegates}
        for i, runtime in enumerate(self.runtimes):
            for j, delegate in enumerate(runtime.delegates):
                if delegate not in names:
                    raise ValueError(f"runtimes[{i}].delegates[{j}]: {runtime.name} names "
                                     f"delegate {delegate!r}, which has no [[delegates]] table")
        return self

    def delegate(self, name: str) -> Delegate | None:
        return next((d for d in self.delegates if d.name == name), None)

    def has(self, feature: str) -> bool:
        return feature in self.cpu.isa or (self.gpu is not None and feature in self.gpu.features)


def load_profile_file(path: Path | Traversable) -> Profile:
    """Load and validate one profile file."""
    return replace(load_toml(path, Profile), source=str(path))


def load_profiles() -> dict[str, Profile]:
    """Every profile by name; a user profile overrides the shipped one of the same name."""
    found: dict[str, Profile] = {}
    for path in find_tomls(paths.shipped("profiles"), paths.profiles_dir()).values():
        profile = load_profile_file(path)
        found[profile.name] = profile
    return found


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise InputError(f"unknown profile {name!r}; known profiles: "
                         f"{', '.join(sorted(profiles))}. Add one as a TOML file in "
                         f"{paths.profiles_dir()}.")
    return profiles[name]
