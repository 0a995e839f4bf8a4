"""The board a deploy measures on: its target entry, its profile, and the facts it reports.

`local` is this machine: its profile is the shipped one for its architecture, corrected by
what the machine says about itself (online cores, ISA features, RAM), so a 2-core VM is
not planned as a 4-core desktop and a CPU with VNNI is not treated as one without.

A target says what it is through its agent's `info` whenever edgecomp connects (deploy,
`targets check`). That report is kept per target in the cache (`paths.board_facts_file`)
with the address it came from and when, so a plan made without a connection
(`edgecomp plan --target NAME`) still follows the board, and says how old its facts are.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from edgecomp import paths
from edgecomp.agent.protocol import AgentInfo, ProtocolError
from edgecomp.atomic import atomic_write_json
from edgecomp.errors import InputError
from edgecomp.hardware.facts import BoardFacts, facts_from_info, local_board_facts
from edgecomp.hardware.profiles import Profile, get_profile, load_profiles
from edgecomp.hardware.targets import Target, load_targets

log = logging.getLogger(__name__)

# The layout of a board-facts file around the agent's report (which has its own version).
FACTS_FILE_VERSION = 1

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


def board_facts(board: Board, ask: Callable[[], AgentInfo] | None = None) -> BoardFacts:
    """What the board says about itself: this machine's own facts for `local`; for a
    target, its agent's `info` when connected (`ask`, e.g. a transport's `info`; the answer
    is kept for later), else what it said at the last connection; nothing for a bare
    profile."""
    if board.name == "local" and board.target is None:
        return local_board_facts()
    if board.target is None:
        return BoardFacts()
    if ask is not None:
        info = ask()
        remember_info(board.target, info)
        return facts_from_info(info, source=f"the agent on {board.name}")
    cached = cached_info(board.target)
    if cached is None:
        return BoardFacts()
    info, read_at = cached
    return facts_from_info(info, source=f"{board.name}'s agent on "
                                        f"{read_at.astimezone():%Y-%m-%d %H:%M}")


# ---------------------------------------------------------------------------------------
# What a target's agent said at the last connection, kept per target.


def address(target: Target) -> str:
    """Where a target is reached: facts read at another address are another board's.

    A labgrid board's host comes from its place at each run, so the place names it.
    """
    place = getattr(target, "labgrid", None)
    if place is not None:
        return f"labgrid {place.describe()} via {place.coordinator or 'the default coordinator'}"
    return f"{target.user}@{target.host}:{target.port}"


def remember_info(target: Target, info: AgentInfo, *, read_at: datetime | None = None) -> None:
    """Keep `info` from `target`'s agent for plans made without a connection.

    A cache that cannot be written costs only that: it is a log line, not a failure.
    """
    path = paths.board_facts_file(target.name)
    entry = {"version": FACTS_FILE_VERSION, "target": target.name, "address": address(target),
             "read_at": (read_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
             "info": info.to_dict()}
    try:
        atomic_write_json(path, entry)
    except OSError as exc:
        log.warning("could not keep what %s reported in %s: %s", target.name, path, exc)


class StaleFacts(ValueError):
    """A board-facts file that does not describe this target as it is now."""


def cached_info(target: Target) -> tuple[AgentInfo, datetime] | None:
    """What `target`'s agent said at the last connection, and when (timezone-aware).

    None when nothing was kept; also, with a log line, when the file is unreadable,
    from another target or address, or from another protocol.
    """
    path = paths.board_facts_file(target.name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        log.warning("ignoring %s: %s", path, exc)
        return None
    try:
        return _read_facts(json.loads(text), target)
    except (ValueError, ProtocolError) as exc:  # JSONDecodeError, StaleFacts too
        log.warning("ignoring the facts kept for %s in %s: %s; `edgecomp targets check %s` "
                    "reads them again", target.name, path, exc, target.name)
        return None


def _read_facts(entry: object, target: Target) -> tuple[AgentInfo, datetime]:
    if not isinstance(entry, dict) or entry.get("version") != FACTS_FILE_VERSION:
        raise StaleFacts(f"not a board-facts file of version {FACTS_FILE_VERSION}")
    if entry.get("target") != target.name or entry.get("address") != address(target):
        raise StaleFacts(f"they describe {entry.get('target')!r} at {entry.get('address')!r}, "
                         f"not {target.name} at {address(target)}")
    read_at = datetime.fromisoformat(str(entry.get("read_at")))
    if read_at.tzinfo is None:
        raise StaleFacts(f"read_at {entry.get('read_at')!r} has no time zone")
    return AgentInfo.from_dict(entry.get("info")), read_at
