"""What a board says about itself (cores, ISA, RAM, runtimes), which beats its profile.

`BoardFacts` is the planner's view of it: this machine's own facts for `local`
(`local_board_facts`), or a target's agent's `info` (`facts_from_info`).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from edgecomp.agent.device import CPUINFO_FEATURES, emulation, isa_features
from edgecomp.agent.protocol import AgentInfo
from edgecomp.hardware.profiles import Profile


# The ISA features a board's report can show (read from /proc/cpuinfo by the agent). A
# profile feature outside this set (fp16-storage) is the profile's word alone.
REPORTED_ISA = frozenset(CPUINFO_FEATURES.values())


# `platform.machine()` spellings -> the profile's `cpu.arch`.
ARCH_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


@dataclass(frozen=True)
class BoardFacts:
    """What a board reports about itself, which beats what its profile says.

    A field is None where the board did not say; the profile's fact stands there.
    """

    online_cores: int | None = None
    isa: frozenset[str] | None = None  # the REPORTED_ISA features it has
    ram_mb: int | None = None
    arch: str | None = None  # platform.machine() on the board
    runtimes: Mapping[str, str | None] | None = None  # runtime -> version, None: not installed
    emulated: str | None = None  # "qemu-user: aarch64 on x86_64"; None on real hardware
    # Who reported it: "this machine", "the agent on sim-pi4" (connected now),
    # "sim-pi4's agent on 2026-11-24 12:00" (kept from the last connection).
    source: str = ""

    @property
    def who(self) -> str:
        return self.source or "the board"

    def installed(self, runtime: str) -> bool | None:
        """Whether the board has `runtime`; None where its report does not say."""
        if self.runtimes is None or runtime not in self.runtimes:
            return None
        return self.runtimes[runtime] is not None


def board_arch(profile: Profile, board: BoardFacts) -> str:
    """The CPU architecture decisions follow: the board's where it said, else the profile's."""
    if board.arch:
        return ARCH_NAMES.get(board.arch.lower(), board.arch.lower())
    return profile.cpu.arch


def cpu_isa(profile: Profile, board: BoardFacts) -> frozenset[str]:
    """The CPU's ISA features: the board's report beats the profile both ways for the
    features a report can show. An emulated CPU's features are the emulator's (or the
    host's), not the board's, so the profile stands; a board of another architecture keeps
    nothing of the profile's."""
    if board.isa is None or board.emulated:
        return frozenset(profile.cpu.isa)
    if board_arch(profile, board) != profile.cpu.arch:
        return board.isa
    return frozenset(f for f in profile.cpu.isa if f not in REPORTED_ISA) | board.isa


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
    # An empty feature list is what an unreadable /proc/cpuinfo gives: the profile stands.
    return BoardFacts(online_cores=cores, isa=frozenset(isa_features(text)) or None,
                      ram_mb=ram_mb, arch=platform.machine() or None,
                      emulated=emulation(text) if text else None, source="this machine")


def facts_from_info(info: AgentInfo, *, source: str) -> BoardFacts:
    """The planner's view of an agent's `info`."""
    device = info.device
    # An empty feature list is what an unreadable /proc/cpuinfo gives: the profile stands.
    return BoardFacts(online_cores=info.online_cores, isa=frozenset(device.isa) or None,
                      ram_mb=None if device.mem_total_mb is None else int(device.mem_total_mb),
                      arch=info.arch, runtimes=dict(info.runtimes), emulated=device.emulated,
                      source=source)


def profile_mismatches(profile: Profile, facts: BoardFacts) -> list[str]:
    """Where the board differs from its profile, one phrase each; empty when it matches."""
    found = []
    if board_arch(profile, facts) != profile.cpu.arch:
        found.append(f"CPU {facts.arch}, not {profile.cpu.arch}")
    if facts.online_cores is not None and facts.online_cores != profile.cpu.cores:
        found.append(f"{facts.online_cores} usable cores, not {profile.cpu.cores}")
    if facts.isa is not None and not facts.emulated:
        claimed = frozenset(profile.cpu.isa) & REPORTED_ISA
        if claimed - facts.isa:
            found.append(f"no {', '.join(sorted(claimed - facts.isa))}")
        if facts.isa - claimed:
            found.append(f"{', '.join(sorted(facts.isa - claimed))} beyond the profile's ISA")
    return found
