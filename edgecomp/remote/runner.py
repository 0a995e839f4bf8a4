"""Open the transport for a target name: `local`, or a board from the inventory."""

from __future__ import annotations

from edgecomp.errors import InputError
from edgecomp.remote.base import Transport


def open_transport(name: str) -> Transport:
    """A connected transport for `name`; an unknown name is one sentence listing known ones."""
    from edgecomp.remote.local import LocalTransport

    if name == "local":
        return LocalTransport()
    raise InputError(f"unknown target {name!r}; known targets: local. Add boards to the "
                     "target inventory (see README).")
