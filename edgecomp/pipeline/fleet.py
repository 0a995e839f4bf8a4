"""Fleets: one deploy or bench measured on several boards at once.

`--target a --target b` names boards; `--targets SELECTOR` picks them from the inventory
(`profile=pi4`, `group=lab`, `all`, or `a,b`). Each board is measured in its own thread
with its own connection; the agent's lock on each board keeps other edgecomp processes off
it while it is measured. A board that cannot be reached, or whose link drops, gives failed
records and never stops the others.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from edgecomp.hardware.board import Board, resolve_board
from edgecomp.errors import InputError
from edgecomp.remote.base import Transport, transport_errors

log = logging.getLogger(__name__)
T = TypeVar("T")

SELECTORS = "profile=NAME, group=NAME, all, or NAME,NAME"


def select_targets(names: Sequence[str] | None, selector: str | None) -> list[str]:
    """The boards named by `--target` (repeatable) and `--targets SELECTOR`, in the order
    given and each once; `local` when neither names any."""
    from edgecomp.hardware.targets import load_targets

    chosen = list(names or [])
    if selector is not None:
        selector = selector.strip()
        key, sep, value = selector.partition("=")
        if sep:
            targets = load_targets()
            if key == "profile":
                picked = [t.name for t in targets.values() if t.profile == value]
            elif key == "group":
                picked = [t.name for t in targets.values() if value in t.groups]
            else:
                raise InputError(f"--targets {selector}: give {SELECTORS}.")
        elif selector == "all":
            picked = list(load_targets())
        else:
            picked = [name.strip() for name in selector.split(",") if name.strip()]
        if not picked:
            raise InputError(f"--targets {selector!r}: no target in the inventory matches; see "
                             "`edgecomp targets list`." if selector.strip(" ,") else
                             f"--targets needs a selector: {SELECTORS}.")
        chosen += sorted(picked) if sep or selector == "all" else picked
    return list(dict.fromkeys(chosen)) or ["local"]


@dataclass(frozen=True)
class Unreachable:
    """Stands in for the transport of a board that could not be reached, so that its
    failed records name the board."""

    target: str
    name: str = "ssh"


@dataclass
class Member:
    """One board of a fleet: its connection, or why there is none."""

    name: str
    board: Board
    transport: Transport | None = None
    error: str | None = None

    @property
    def reached(self) -> Transport | Unreachable:
        return self.transport if self.transport is not None else Unreachable(self.name)


def connect(names: Sequence[str], stack: ExitStack) -> list[Member]:
    """Resolve every name first (an unknown one is refused before any connection), then
    connect to all boards at once; each open connection is closed by `stack`.

    With one board its connection error is raised, as for any single deploy; in a fleet it
    becomes that member's `error`.
    """
    from edgecomp.remote.connect import open_transport

    members = [Member(name=name, board=resolve_board(name)) for name in names]

    def open_one(member: Member) -> Member:
        try:
            member.transport = open_transport(member.name, target=member.board.target)
        except transport_errors() as exc:
            if len(members) == 1:
                raise
            member.error = f"{member.name} could not be reached: {exc}"
            log.warning("%s", member.error)
        return member

    try:
        concurrently([lambda m=m: open_one(m) for m in members])
    finally:
        for member in members:
            if member.transport is not None:
                stack.enter_context(member.transport)  # type: ignore[arg-type]
    return members


def concurrently(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run each call in its own thread and return their results in order. Every call
    finishes before the first exception (if any) is raised."""
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="board") as pool:
        futures = [pool.submit(call) for call in calls]
        results: list[Any] = []
        error: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # re-raised below, once every board is done
                error = error or exc
                results.append(None)
    if error is not None:
        raise error
    return results


def board_progress(progress: Callable[[str, int, int], None] | None, name: str, fleet: bool
                   ) -> Callable[[str, int, int], None] | None:
    """A progress callback whose lines name the board, in a fleet."""
    if progress is None or not fleet:
        return progress

    def tagged(description: str, done: int, total: int) -> None:
        progress(f"{name}: {description}", done, total)

    return tagged
