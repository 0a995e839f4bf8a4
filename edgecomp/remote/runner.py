"""Open the transport for a target name: `local`, or a board from the inventory."""

from __future__ import annotations

from edgecomp.remote.base import Transport


def open_transport(name: str) -> Transport:
    """A connected transport for `name`; an unknown name is one sentence listing known ones."""
    if name == "local":
        from edgecomp.remote.local import LocalTransport

        return LocalTransport()
    from edgecomp.remote.ssh import SshTransport
    from edgecomp.targets import get_target

    return SshTransport(get_target(name))
