"""Open the transport for a target name: `local`, a board from the inventory, or a board
held through a labgrid place (reserved and acquired here, released when it closes)."""

from __future__ import annotations

from edgecomp.remote.base import TRANSPORTS, Transport, transport_kind


def open_transport(name: str) -> Transport:
    """A connected transport for `name`; an unknown name is one sentence listing known ones."""
    if name == "local":
        return TRANSPORTS.get("local").open(None)
    from edgecomp.hardware.targets import get_target

    target = get_target(name)
    return TRANSPORTS.get(transport_kind(target)).open(target)
