"""Board host keys: their fingerprints, the policy that refuses unknown ones, and reading the
key a board presents now (for `edgecomp targets trust`)."""

from __future__ import annotations

import socket

from edgecomp.errors import DeviceError, InputError
from edgecomp.hardware.targets import Target, inventory_known_hosts


def key_fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a host key."""
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_name(target: Target) -> str:
    """How known_hosts names the board: `host`, or `[host]:port` off port 22."""
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


class RefuseUnknownHost:
    """paramiko policy: never accept a key we do not know; say how to trust it."""

    def __init__(self, target: Target):
        self.target = target

    def missing_host_key(self, client, hostname, key):
        how = f"trust it with `edgecomp targets trust {self.target.name}`"
        if self.target.labgrid is not None:  # its address is known only while its place is held
            how = (f"add this line to {inventory_known_hosts()}: "
                   f"{host_key_name(self.target)} {key.get_name()} {key.get_base64()}")
        raise DeviceError(
            f"the host key of {self.target.name} ({hostname}) is not known: "
            f"{key.get_name()} {key_fingerprint(key)}. If that is your board's key, {how}.")


def fetch_host_key(target: Target):
    """The key the board presents now (for `targets trust`), without logging in."""
    import paramiko

    if target.host is None:
        raise InputError(f"{target.name} is reached through a labgrid place, so its address "
                         "is known only while the place is held: run `edgecomp targets check "
                         f"{target.name}`, which shows an unknown host key with the line that "
                         "trusts it.")
    try:
        sock = socket.create_connection((target.host, target.port),
                                        timeout=target.connect_timeout)
    except OSError as exc:
        raise DeviceError(f"cannot reach {target.name} at {target.host}:{target.port} "
                          f"({exc}).") from exc
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=target.connect_timeout)
        return transport.get_remote_server_key()
    except paramiko.SSHException as exc:
        raise DeviceError(f"{target.name} did not complete an SSH handshake ({exc}).") from exc
    finally:
        transport.close()
