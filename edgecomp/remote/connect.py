"""Open the transport for a target name: `local`, a board from the inventory, or a board
held through a labgrid place (reserved and acquired here, released when it closes)."""

from __future__ import annotations

from edgecomp.remote.base import Transport


def open_transport(name: str) -> Transport:
    """A connected transport for `name`; an unknown name is one sentence listing known ones."""
    if name == "local":
        from edgecomp.remote.local import LocalTransport

        return LocalTransport()
    from edgecomp.hardware.targets import get_target

    target = get_target(name)
    if target.labgrid is not None:
        from edgecomp.remote.labgrid import open_place_transport

        return open_place_transport(target)
    from edgecomp.remote.ssh import SshTransport

    return SshTransport(target)
