"""The board a deploy measures on: its target entry, its profile, and the facts it reports.

`local` is this machine: its profile is the shipped one for its architecture, corrected by
what the machine says about itself (online cores, ISA features, RAM), so a 2-core VM is
not planned as a 4-core desktop and a CPU with VNNI is not treated as one without.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from edgecomp.agent.device import isa_features
from edgecomp.errors import InputError
from edgecomp.plan import BoardFacts
from edgecomp.profiles import Profile, get_profile, load_profiles
from edgecomp.remote.base import Transport
from edgecomp.targets import Target, load_targets

# The shipped profile that describes this machine's architecture, by `platform.machine()`.
LOCAL_PROFILES = {"x86_64": "x86-64", "AMD64": "x86-64"}


@dataclass(frozen=True)
class Board:
    """Where a deploy measures: a target name, its inventory entry and its profile."""

    name: str
    target: Target | None  # None for `local` and for a bare profile name
    profile: Profile | None  # None when this machine's architecture has no profile


def resolve_board(name: str) -> Board:
    """The board called `name`: `local`, a target in the inventory, or a bare profile."""
    if name == "local":
        local = LOCAL_PROFILES.get(platform.machine())
        return Board(name="local", target=None,
                     profile=get_profile(local) if local else None)
    targets = load_targets()
    if name in targets:
        target = targets[name]
        return Board(name=name, target=target, profile=get_profile(target.profile))
    if name in load_profiles():
        return Board(name=name, target=None, profile=get_profile(name))
    raise InputError(f"{name!r} is neither a target nor a profile; see `edgecomp targets list` "
                     "and `edgecomp profiles list`.")


def local_board_facts(cpuinfo: Path = Path("/proc/cpuinfo"),
                      meminfo: Path = Path("/proc/meminfo")) -> BoardFacts:
    """What this machine says about itself: online cores, ISA features and RAM."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    ram_mb = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_mb = int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    isa = frozenset(isa_features(text))
    return BoardFacts(online_cores=cores, isa=isa, ram_mb=ram_mb, source="this machine")


def board_facts(board: Board, transport: Transport | None = None) -> BoardFacts:
    """What the board says about itself: this machine's own facts for `local`, the agent's
    `info` for a target (when connected), nothing for a bare profile."""
    if board.name == "local" and board.target is None:
        return local_board_facts()
    if board.target is None or transport is None:
        return BoardFacts()
    return BoardFacts(online_cores=transport.info().online_cores,
                      source=f"the agent on {board.name}")
