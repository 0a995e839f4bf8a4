"""The SSH link to a board (paramiko): connect with checked host keys, run a command, notice
a link that stopped carrying data.

Safety rules: host keys are checked against known_hosts (the user's and the inventory's);
an unknown key is refused with its fingerprint and the command to trust it; a changed key
is refused and never replaced. No agent forwarding. Every remote command is built from an
argument list with shlex quoting.

A link that stops carrying bytes (frozen, not closed) is found by keepalive requests that
need an answer, as OpenSSH's ServerAliveInterval does: a command that stays quiet is
probed, and transfers give up when the board stops acknowledging data.

A command edgecomp gives up on ends on the board too: every command runs under coreutils'
`timeout` (in every Debian and Raspberry Pi OS image), which ends it and what it started
at the same limit, and its stdin stays open while edgecomp waits, so the agent
(`--watch-host`) exits as soon as the connection goes away.
"""

from __future__ import annotations

import json
import math
import select
import shlex
import threading
import time
from pathlib import Path
from typing import Any, Callable

from edgecomp.errors import DeviceError, last_line
from edgecomp.hardware.targets import Target, inventory_known_hosts
from edgecomp.remote.host_keys import RefuseUnknownHost, key_fingerprint

KEEPALIVE_S = 15  # a keepalive packet after this much idle time keeps NAT entries open
# A command that sends nothing for this long gets a keepalive request that needs an
# answer; no answer within the target's connect_timeout means the link is dead.
PROBE_AFTER_S = 10.0
# An upload or download whose acknowledgements stop for this long has a dead link.
TRANSFER_STALL_S = 20.0
POLL_S = 0.2
# The board's `timeout` sends SIGTERM at the limit and SIGKILL this much later; edgecomp
# waits that long, and a little more, for the board's own verdict.
KILL_AFTER_S = 5
BOARD_VERDICT_S = KILL_AFTER_S + 5.0
TIMED_OUT = (124, 128 + 9)  # `timeout`'s status for a command it ended (SIGTERM; SIGKILL)
NOT_FOUND = 127


class LinkLost(OSError):
    """The SSH connection stopped carrying data (closed, cut or frozen)."""


class CommandTimeout(Exception):
    """A command on the board ran past its time limit (the link itself was fine)."""

    def __init__(self, seconds: float):
        super().__init__(f"no result within {seconds:.0f} s")
        self.seconds = seconds


def open_client(target: Target):
    """A connected paramiko client for `target`, its host key checked; DeviceError with
    the sentence that says why not (changed key, refused login, unreachable)."""
    import paramiko

    client = paramiko.SSHClient()
    for path in (Path.home() / ".ssh" / "known_hosts", inventory_known_hosts()):
        if path.is_file():
            client.get_host_keys().load(str(path))
    client.set_missing_host_key_policy(RefuseUnknownHost(target))
    identity = str(Path(target.identity_file).expanduser()) if target.identity_file else None
    try:
        client.connect(target.host, port=target.port, username=target.user,
                       key_filename=identity, timeout=target.connect_timeout,
                       banner_timeout=target.connect_timeout,
                       auth_timeout=target.connect_timeout,
                       channel_timeout=target.connect_timeout,
                       allow_agent=identity is None, look_for_keys=identity is None)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise DeviceError(
            f"WARNING: the host key of {target.name} ({target.host}:{target.port}) has "
            f"CHANGED: it now presents {key_fingerprint(exc.key)}, known_hosts has "
            f"{key_fingerprint(exc.expected_key)}. This can mean someone is intercepting "
            "the connection. edgecomp will not connect; if the board was reinstalled, "
            "remove the old key from known_hosts and trust the new one.") from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise DeviceError(f"{target.name} refused authentication as {target.user!r} "
                          f"({exc}); check target.user and target.identity_file.") from exc
    except DeviceError:
        client.close()
        raise
    except OSError as exc:
        client.close()
        if identity is not None and exc.filename == identity:  # reading the key, not the net
            problem = "does not exist" if isinstance(exc, FileNotFoundError) else \
                f"cannot be read ({exc.strerror or describe(exc)})"
            raise DeviceError(f"{target.name}: the identity_file {identity} {problem}; set "
                              "target.identity_file to the private key the board "
                              "accepts.") from exc
        raise DeviceError(_unreachable(target, exc)) from exc
    except (paramiko.SSHException, EOFError) as exc:
        transport = client.get_transport()
        # The board answered and its host key was checked, yet nobody logged in: edgecomp
        # had no key to offer (or none it could load); paramiko says only "No
        # authentication methods available".
        no_login = transport is not None and transport.is_active() and \
            not transport.is_authenticated()
        client.close()
        if no_login:
            raise DeviceError(f"{target.name} answered, but edgecomp had no usable "
                              f"credentials to log in as {target.user!r} ({describe(exc)}); "
                              f"tried {_credentials_tried(identity)}. Set "
                              "target.identity_file to the private key the board "
                              "accepts.") from exc
        raise DeviceError(_unreachable(target, exc)) from exc
    client.get_transport().set_keepalive(KEEPALIVE_S)
    return client


def _unreachable(target: Target, exc: BaseException) -> str:
    return (f"cannot reach {target.name} at {target.host}:{target.port} "
            f"({describe(exc)}); is the board on and sshd running?")


def _credentials_tried(identity: str | None) -> str:
    """What paramiko offers the board when it logs in (as `open_client` asks it to)."""
    if identity is not None:
        return f"the identity_file {identity} only"
    import os

    agent = "ssh-agent's keys" if os.environ.get("SSH_AUTH_SOCK") else \
        "ssh-agent (none running: SSH_AUTH_SOCK is not set)"
    # paramiko's own list of default keys (SSHClient._auth, look_for_keys)
    keys = [Path.home() / ".ssh" / f"id_{kind}" for kind in ("rsa", "ecdsa", "ed25519")]
    found = [str(key) for key in keys if key.is_file()]
    files = ", ".join(found) if found else \
        f"the default keys in {Path.home() / '.ssh'} (none exist: id_rsa, id_ecdsa, id_ed25519)"
    return f"{agent} and {files}"


def close_quietly(client) -> None:
    """Close a client without talking to the board (the link may be gone)."""
    if client is not None:
        try:
            client.close()
        except Exception:  # closing a broken connection can fail in many ways
            pass


def alive(client, timeout: float) -> bool:
    """Whether the board answers a keepalive request within `timeout` seconds."""
    transport = client.get_transport() if client is not None else None
    if transport is None or not transport.is_active():
        return False
    answered = threading.Event()

    def ask() -> None:
        try:
            # OpenSSH answers any global request that wants a reply (here: "unknown
            # request"), so an answer proves the link carries data both ways.
            transport.global_request("keepalive@openssh.com", wait=True)
        except Exception:
            return
        answered.set()

    threading.Thread(target=ask, daemon=True, name="edgecomp-ssh-probe").start()
    return answered.wait(timeout) and transport.is_active()


def complete_lines(buffer: bytes | bytearray, shown: int) -> tuple[list[str], int]:
    """The lines of `buffer` completed after offset `shown`, and the offset past them: a
    line that arrives in several chunks is given whole, once its end has come."""
    end = buffer.rfind(b"\n") + 1
    if end <= shown:
        return [], shown
    return bytes(buffer[shown:end]).decode("utf-8", "replace").splitlines(), end


def execute(client, argv: list[str], *, target: Target, timeout: float,
            stderr_line: Callable[[str], None] | None = None) -> tuple[int, str, str]:
    """Run a command given as an argument list (every argument shell-quoted, the target's
    `env` set) under the board's `timeout`; (exit status, stdout, stderr). `stderr_line`
    sees each line of stderr as it arrives (the agent's progress).

    Raises `CommandTimeout` after `timeout` seconds (the board has ended the command and
    what it started), and `LinkLost` when the board stops answering keepalive requests
    while the command is quiet. The command's stdin stays open until this returns.
    """
    limit = max(1, math.ceil(timeout))
    env = ["env", *(f"{k}={v}" for k, v in target.env.items())] if target.env else []
    command = shlex.join(["timeout", "-k", str(KILL_AFTER_S), str(limit), *env, *argv])
    channel = client.get_transport().open_session(timeout=target.connect_timeout)
    try:
        channel.exec_command(command)
        out, err = bytearray(), bytearray()
        shown = 0  # how much of `err` stderr_line has seen
        start = quiet_since = time.monotonic()
        while True:
            select.select([channel], [], [], POLL_S)
            # The exit status arrives after the command's output, so once it is here
            # everything the command wrote is buffered and drained below.
            done = channel.exit_status_ready()
            got = False
            while channel.recv_ready():
                out += channel.recv(1 << 16)
                got = True
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(1 << 16)
                got = True
            if stderr_line is not None and got:
                lines, shown = complete_lines(err, shown)
                for text in lines:
                    stderr_line(text)
            if done:
                break
            if channel.closed or not channel.get_transport().is_active():
                if channel.exit_status_ready():
                    continue  # it finished just now: drain what is left
                raise LinkLost("the connection closed before the command finished")
            now = time.monotonic()
            if now - start > limit + BOARD_VERDICT_S:
                raise CommandTimeout(timeout)
            if got:
                quiet_since = now
            elif now - quiet_since > PROBE_AFTER_S:
                if not alive(client, target.connect_timeout):
                    raise LinkLost(f"the board stopped answering (no reply to a keepalive "
                                   f"in {target.connect_timeout:.0f} s)")
                quiet_since = time.monotonic()
        status = channel.recv_exit_status()
    finally:
        channel.close()
    if status == -1:  # the channel closed without an exit status: the link went away
        raise LinkLost("the connection closed before the command finished")
    if status in TIMED_OUT and time.monotonic() - start >= limit:
        raise CommandTimeout(timeout)
    if status == NOT_FOUND and (b"timeout: not found" in err
                                or b"timeout: command not found" in err):
        raise DeviceError(f"{target.name} has no `timeout` command, which edgecomp runs "
                          "every board command under; install coreutils on the board.")
    return status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def open_sftp(client):
    """An SFTP session whose transfers give up after TRANSFER_STALL_S without an answer."""
    sftp = client.open_sftp()
    sftp.get_channel().settimeout(TRANSFER_STALL_S)
    return sftp


def remove_quietly(sftp, path: str) -> None:
    try:
        sftp.remove(path)
    except OSError:
        pass


def describe(exc: BaseException) -> str:
    """An exception's message, or its type where it has none."""
    text = str(exc).strip()
    return text if text else type(exc).__name__


def json_line(out: str, *, where: str, what: str) -> dict[str, Any]:
    """The last JSON line a command of edgecomp's printed on the board."""
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError) as exc:
        raise DeviceError(f"{where} answered {what} with something edgecomp cannot read "
                          f"({last_line(out)}).") from exc
