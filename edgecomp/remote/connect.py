"""Open the transport for a target: `local`, a board from the inventory, or a board held
through a labgrid place (reserved and acquired here, released when it closes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecomp.remote.base import TRANSPORTS, Transport, transport_kind

if TYPE_CHECKING:
    from edgecomp.hardware.targets import Target


def open_transport(name: str, *, target: Target | None = None) -> Transport:
    """A connected transport for the target `name` (its `target` entry when the caller
    has loaded it already); an unknown name is one sentence listing known ones."""
    if name == "local":
        return TRANSPORTS.get("local").open(None)
    if target is None:
        from edgecomp.hardware.targets import get_target

        target = get_target(name)
    return TRANSPORTS.get(transport_kind(target)).open(target)
