"""SSH transport (paramiko): push artifacts to a board's cache, run the agent, clean up.

Safety rules: host keys are checked against known_hosts (the user's and the
inventory's); an unknown key is refused with its fingerprint and the command to trust
it; a changed key is refused and never replaced. No agent forwarding. Every remote
command is built from an argument list with shlex quoting. Uploads go to a temporary
name, are hashed on the board, then renamed into a content-addressed cache; a cached
copy is hashed again before it is used.

Faults: every call on the board goes through one boundary (`SshTransport._guard`) where a
paramiko, socket or OS error, or a timeout, becomes a `DeviceError` sentence. A dropped
link is reconnected once; when that fails too, the rest of the run fails fast with the
reason instead of waiting on a dead connection again. A link that stops carrying bytes
(frozen, not closed) is found by keepalive requests that need an answer, as OpenSSH's
ServerAliveInterval does, and uploads give up when the board stops acknowledging data.

On the board edgecomp removes only what it can prove it made: run directories named like
its run ids that hold its marker file, and upload temporaries named like its own. What a
lost link kept a run from removing is noted on this machine and removed by the next run
to the same target; the board's own sweep (PREFLIGHT) catches the rest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import select
import shlex
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from edgecomp.errors import DeviceError, InputError
from edgecomp.hashing import file_sha256
from edgecomp.agent.protocol import AgentInfo, MeasureReport, RunReport, TargetFacts
from edgecomp.remote.agent_bundle import agent_pyz
from edgecomp.remote.base import (MeasureOptions, parse_agent_output, parse_report,
                                  read_outputs, write_inputs)
from edgecomp.hardware.targets import Target, inventory_known_hosts

log = logging.getLogger(__name__)

T = TypeVar("T")

KEEPALIVE_S = 15  # a keepalive packet after this much idle time keeps NAT entries open
# A command that sends nothing for this long gets a keepalive request that needs an
# answer; no answer within the target's connect_timeout means the link is dead.
PROBE_AFTER_S = 10.0
# An upload or download whose acknowledgements stop for this long has a dead link.
TRANSFER_STALL_S = 20.0
POLL_S = 0.2

RUN_MARKER = ".edgecomp-run"  # in each run directory this edgecomp created
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")
TMP_NAME = re.compile(r"^\.tmp-[0-9a-f]{16}-[0-9a-f]{8}$")

# Run on the board with its python: resolve the work directory, sweep what earlier runs
# of edgecomp left behind (and only that), create the cache and this run's directory
# with its marker (one round trip). A run directory is swept when
# it is named like a run id, holds the marker and is older than 6 h (its connection
# died); an upload temporary when it is named like one and no process has it open (the
# upload's sftp session ended with its connection; read from /proc) and it is untouched
# for a minute (an upload being committed has just been written), or when it is
# untouched for 10 minutes (an upload in progress writes to it all the time).
PREFLIGHT = """
import json, os, re, shutil, sys, time
work = os.path.abspath(os.path.expanduser(sys.argv[1]))
run_id, marker = sys.argv[2], sys.argv[3]
run_name, tmp_name = re.compile(sys.argv[4]), re.compile(sys.argv[5])
runs, cache = os.path.join(work, "runs"), os.path.join(work, "cache")
now = time.time()
def age(path):
    try:
        return now - os.lstat(path).st_mtime
    except OSError:
        return 0
if os.path.isdir(runs):
    for name in os.listdir(runs):
        path = os.path.join(runs, name)
        if run_name.match(name) and name != run_id and not os.path.islink(path) \\
                and os.path.isfile(os.path.join(path, marker)) and age(path) > 6 * 3600:
            shutil.rmtree(path, ignore_errors=True)
def open_files():
    if not os.path.isdir("/proc/self/fd"):
        return None
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                fds = os.listdir("/proc/%s/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    found.add(os.readlink("/proc/%s/fd/%s" % (pid, fd)))
                except OSError:
                    pass
    return found
if os.path.isdir(cache):
    temps = [os.path.join(cache, name) for name in os.listdir(cache) if tmp_name.match(name)]
    temps = [path for path in temps if os.path.isfile(path) and not os.path.islink(path)]
    in_use = open_files() if temps else None
    for path in temps:
        if age(path) > 600 or (in_use is not None and age(path) > 60
                               and os.path.realpath(path) not in in_use):
            os.remove(path)
mine = os.path.join(runs, run_id)
for path in (cache, mine):
    if not os.path.isdir(path):
        os.makedirs(path)
open(os.path.join(mine, marker), "a").close()
print(json.dumps({"workdir": work, "python": sys.version.split()[0]}))
"""

# Before an upload: is the file in the cache, and is it what its name says? A copy that
# does not hash to its name (corrupted, or replaced) is removed, and uploaded again.
CACHE_CHECK = """
import hashlib, json, os, shutil, sys
path, expected = sys.argv[1:3]
state = "missing"
if os.path.isfile(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    state = "ok" if digest.hexdigest() == expected else "damaged"
    if state == "damaged":
        os.remove(path)
print(json.dumps({"state": state,
                  "free_bytes": shutil.disk_usage(os.path.dirname(path)).free}))
"""

# Verify an upload by hash on the board, then move it into place atomically.
COMMIT_UPLOAD = """
import hashlib, os, sys
tmp, final, expected = sys.argv[1:4]
digest = hashlib.sha256()
with open(tmp, "rb") as handle:
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
if digest.hexdigest() != expected:
    os.remove(tmp)
    sys.exit("sha256 mismatch after upload")
os.rename(tmp, final)
"""

# At the end of a run: this run's directory (only with its marker) and the upload
# temporaries this run left (only names shaped like edgecomp's).
CLEANUP = """
import os, re, shutil, sys
run_dir, marker, tmp_name = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
if run_dir and os.path.isfile(os.path.join(run_dir, marker)) and not os.path.islink(run_dir):
    shutil.rmtree(run_dir, ignore_errors=True)
for path in sys.argv[4:]:
    if tmp_name.match(os.path.basename(path)) and os.path.isfile(path):
        os.remove(path)
"""


class LinkLost(OSError):
    """The SSH connection stopped carrying data (closed, cut or frozen)."""


def key_fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a host key."""
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_name(target: Target) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


class _RefuseUnknownHost:
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


class SshTransport:
    """A connection to one board; measure and run_batch execute the agent there."""

    name = "ssh"

    def __init__(self, target: Target, *, place: str | None = None,
                 on_close: Callable[[], None] | None = None):
        """Connect to `target`. A board held through a labgrid place names it (`place`, kept
        in the facts) and gives `on_close`, which releases the place; it runs exactly once,
        when the transport closes or when connecting fails."""
        self.target = target.name
        self.config = target
        self.place = place
        self._on_close = on_close
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)
        self.bytes_sent = 0
        self.files_sent = 0
        self.client = None
        self.workdir: str | None = None
        self.board_python: str | None = None
        self._agent_remote: str | None = None
        self._pending: set[str] = set()  # upload temporaries not yet committed
        self._lost: str | None = None  # why the link is gone for the rest of this run
        try:
            self._connect()
        except BaseException:
            self._finish()
            raise

    # -- connection -------------------------------------------------------------------

    def _connect(self) -> None:
        import paramiko

        target = self.config
        client = paramiko.SSHClient()
        known = [Path.home() / ".ssh" / "known_hosts", inventory_known_hosts()]
        for path in known:
            if path.is_file():
                client.get_host_keys().load(str(path))
        client.set_missing_host_key_policy(_RefuseUnknownHost(target))
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
        except (OSError, paramiko.SSHException, EOFError) as exc:
            client.close()
            raise DeviceError(f"cannot reach {target.name} at {target.host}:{target.port} "
                              f"({_describe(exc)}); is the board on and sshd "
                              "running?") from exc
        client.get_transport().set_keepalive(KEEPALIVE_S)
        self.client = client
        try:
            self._preflight()
            self._clean_orphans()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self._drop()
            raise DeviceError(f"{target.name} stopped answering while edgecomp prepared "
                              f"{target.workdir} ({_describe(exc)}).") from exc
        except BaseException:
            self._drop()
            raise

    def _preflight(self) -> None:
        timeout = max(5.0, 3 * self.config.connect_timeout)
        try:
            code, out, err = self._exec(
                [self.config.python, "-c", PREFLIGHT, self.config.workdir, self.run_id,
                 RUN_MARKER, RUN_ID.pattern, TMP_NAME.pattern], timeout=timeout)
        except _Timeout as exc:
            raise DeviceError(f"{self.target}: {self.config.python} did not prepare "
                              f"{self.config.workdir} within {timeout:.0f} s; check that "
                              "target.python starts on the board and the disk "
                              "answers.") from exc
        if code != 0:
            raise DeviceError(f"{self.target}: {self.config.python} could not prepare "
                              f"{self.config.workdir} ({_last_line(err)}); check "
                              "target.python and target.workdir.")
        facts = _json_line(out, where=self.target, what="the preflight")
        self.workdir = facts["workdir"]
        self.board_python = facts["python"]

    def _drop(self) -> None:
        """Close the connection without talking to the board (the link may be gone)."""
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection can fail in many ways
                pass

    def _alive(self) -> bool:
        """Whether the board answers a keepalive request within connect_timeout."""
        transport = self.client.get_transport() if self.client is not None else None
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
        return answered.wait(self.config.connect_timeout) and transport.is_active()

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """The one boundary around work on the board: transport errors become DeviceError.

        A dropped link (closed, cut, frozen) is reconnected once and `call` runs again
        (every call here can be repeated: uploads are content-addressed). When that fails
        too, the link is marked lost and later calls fail at once with the reason.
        """
        import paramiko

        if self._lost is not None:
            raise DeviceError(f"{what} on {self.target} was not tried: {self._lost}")
        for attempt in (1, 2):
            try:
                if self.client is None:
                    self._connect()
                return call()
            except _Timeout as exc:
                raise DeviceError(f"{self.target} did not finish {what} within "
                                  f"{exc.seconds:.0f} s.") from exc
            except DeviceError as exc:
                if self.client is None:  # reconnecting failed: do not try again this run
                    self._lost = f"the connection was lost earlier in this run ({exc})"
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if not isinstance(exc, LinkLost) and self._alive():  # the board's error
                    raise DeviceError(f"{what} on {self.target} failed "
                                      f"({_describe(exc)}).") from exc
                self._drop()
                if attempt == 2:
                    self._lost = (f"the connection was lost while {what} "
                                  f"({_describe(exc)}), also after reconnecting once")
                    raise DeviceError(f"lost the connection to {self.target} while {what} "
                                      f"({_describe(exc)}), also after one retry; check the "
                                      "board and the network.") from exc
                log.warning("connection to %s lost while %s (%s); reconnecting once",
                            self.target, what, _describe(exc))
                time.sleep(1.0)
                try:
                    self._connect()
                except DeviceError as again:
                    self._lost = (f"the connection was lost while {what} "
                                  f"({_describe(exc)}) and reconnecting failed")
                    raise DeviceError(f"lost the connection to {self.target} while {what} "
                                      f"({_describe(exc)}), and reconnecting failed: "
                                      f"{again}") from exc
                self._clean_pending()
        raise AssertionError("unreachable")

    @property
    def run_dir(self) -> str:
        return f"{self.workdir}/runs/{self.run_id}"

    def _exec(self, argv: list[str], *, timeout: float) -> tuple[int, str, str]:
        """Run a command given as an argument list; every argument is shell-quoted.

        Raises `_Timeout` after `timeout` seconds, and `LinkLost` when the board stops
        answering keepalive requests while the command is quiet.
        """
        command = shlex.join(argv)
        env = self.config.env
        if env:
            command = shlex.join(["env", *(f"{k}={v}" for k, v in env.items())]) + " " + command
        channel = self.client.get_transport().open_session(
            timeout=self.config.connect_timeout)
        try:
            channel.exec_command(command)
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            start = quiet_since = time.monotonic()
            while True:
                select.select([channel], [], [], POLL_S)
                # The exit status arrives after the command's output, so once it is
                # here everything the command wrote is buffered and drained below.
                done = channel.exit_status_ready()
                got = False
                while channel.recv_ready():
                    out += channel.recv(1 << 16)
                    got = True
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(1 << 16)
                    got = True
                if done:
                    break
                if channel.closed or not channel.get_transport().is_active():
                    if channel.exit_status_ready():
                        continue  # it finished just now: drain what is left
                    raise LinkLost("the connection closed before the command finished")
                now = time.monotonic()
                if now - start > timeout:
                    raise _Timeout(timeout)
                if got:
                    quiet_since = now
                elif now - quiet_since > PROBE_AFTER_S:
                    if not self._alive():
                        raise LinkLost(f"the board stopped answering (no reply to a "
                                       f"keepalive in {self.config.connect_timeout:.0f} s)")
                    quiet_since = time.monotonic()
            status = channel.recv_exit_status()
        finally:
            channel.close()
        if status == -1:  # the channel closed without an exit status: the link went away
            raise LinkLost("the connection closed before the command finished")
        return status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def _sftp(self):
        sftp = self.client.open_sftp()
        sftp.get_channel().settimeout(TRANSFER_STALL_S)
        return sftp

    # -- content-addressed uploads ------------------------------------------------------

    def push(self, local: Path, *, name: str | None = None) -> str:
        """Upload `local` to the board's cache unless an intact copy is there; its path."""
        return self._guard(f"uploading {local.name}", lambda: self._push(local, name))

    def _push(self, local: Path, name: str | None) -> str:
        sha = file_sha256(local)
        final = f"{self.workdir}/cache/{name or sha + local.suffix}"
        code, out, err = self._exec([self.config.python, "-c", CACHE_CHECK, final, sha],
                                    timeout=120)
        if code != 0:
            raise DeviceError(f"{self.target} could not check its cache for {local.name} "
                              f"({_last_line(err)}).")
        state = _json_line(out, where=self.target, what="the cache check")
        if state["state"] == "ok":
            return final
        if state["state"] == "damaged":
            log.warning("the cached copy of %s on %s did not match its sha256; uploading it "
                        "again", local.name, self.target)
        size, free = local.stat().st_size, state["free_bytes"]
        if size > free:
            raise DeviceError(f"{self.target} has {free // (1 << 20)} MiB free in "
                              f"{self.workdir}, too little for {local.name} "
                              f"({max(1, size >> 20)} MiB); free some disk space.")
        tmp = f"{self.workdir}/cache/.tmp-{sha[:16]}-{secrets.token_hex(4)}"
        self._pending.add(tmp)
        sftp = self._sftp()
        try:
            try:
                sftp.put(str(local), tmp)
            except OSError as exc:
                if isinstance(exc, LinkLost) or not self._alive():
                    raise LinkLost(_describe(exc)) from exc
                _remove_quietly(sftp, tmp)
                self._pending.discard(tmp)
                if isinstance(exc, TimeoutError):
                    raise DeviceError(f"uploading {local.name} to {self.target} stalled: the "
                                      f"board acknowledged nothing for {TRANSFER_STALL_S:.0f} "
                                      "s.") from exc
                raise DeviceError(f"uploading {local.name} to {self.target} failed "
                                  f"({_describe(exc)}); the board's disk may be full "
                                  f"({free // (1 << 20)} MiB were free).") from exc
        finally:
            sftp.close()
        code, _, err = self._exec([self.config.python, "-c", COMMIT_UPLOAD, tmp, final, sha],
                                  timeout=120)
        self._pending.discard(tmp)
        if code != 0:
            raise DeviceError(f"{local.name} arrived damaged on {self.target} "
                              f"({_last_line(err)}); try again.")
        self.bytes_sent += size
        self.files_sent += 1
        return final

    def _remove(self, run_dir: str, temporaries) -> None:
        """Remove a run directory of edgecomp's ("" for none) and upload temporaries on the
        board (CLEANUP checks both are edgecomp's); DeviceError when the board says no."""
        code, _, err = self._exec([self.config.python, "-c", CLEANUP, run_dir, RUN_MARKER,
                                   TMP_NAME.pattern, *sorted(temporaries)], timeout=30)
        if code != 0:
            raise DeviceError(f"{self.target} could not remove {run_dir or 'temporaries'} "
                              f"({_last_line(err)}).")

    def _clean_pending(self) -> None:
        """Remove upload temporaries a dropped connection left (after reconnecting)."""
        if not self._pending or self.client is None:
            return
        try:
            self._remove("", self._pending)
            self._pending.clear()
        except Exception as exc:  # the next run's preflight sweeps them
            log.warning("could not remove upload temporaries on %s: %s", self.target, exc)

    def _agent(self) -> str:
        """The agent zipapp's path in the board's cache (its name carries its hash)."""
        if self._agent_remote is None:
            bundle = agent_pyz()
            self._agent_remote = self.push(bundle, name=bundle.name)
        return self._agent_remote

    # -- agent commands -----------------------------------------------------------------

    def _run_agent(self, args: list[str], *, what: str) -> dict[str, Any]:
        """Run the agent (reconnecting once after a dropped connection)."""
        agent = self._agent()

        def call() -> dict[str, Any]:
            code, out, err = self._exec([self.config.python, agent, *args],
                                        timeout=self.config.command_timeout)
            return parse_agent_output(out, where=self.target, stderr=err)

        return self._guard(what, call)

    def info(self) -> AgentInfo:
        return parse_report(AgentInfo, self._run_agent(["info"], what="reading its state"),
                            where=self.target)

    def measure(self, artifact: Path, options: MeasureOptions,
                inputs: Mapping[str, np.ndarray] | None = None) -> MeasureReport:
        remote = self.push(artifact)
        args = ["measure", remote, *options.agent_args()]
        if self.config.power_probe != "none":
            args += ["--power-probe", self.config.power_probe]
        with tempfile.TemporaryDirectory(prefix="edgecomp-measure-") as tmp:
            if inputs is not None:
                args += ["--input-npz", self.push(write_inputs(Path(tmp) / "in.npz", inputs))]
            report = parse_report(MeasureReport,
                                  self._run_agent(args, what=f"measuring {artifact.name}"),
                                  where=self.target)
        return dataclasses.replace(report, target=TargetFacts(
            name=self.target, transport="ssh", host=self.config.host,
            profile=self.config.profile, board_python=self.board_python, place=self.place))

    def run_batch(self, artifact: Path, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        remote = self.push(artifact)
        with tempfile.TemporaryDirectory(prefix="edgecomp-batch-") as tmp:
            remote_in = self.push(write_inputs(Path(tmp) / "in.npz", inputs))
            local_out = Path(tmp) / "out.npz"
            remote_out = f"{self.run_dir}/out-{secrets.token_hex(4)}.npz"
            parse_report(RunReport, self._run_agent(
                ["run", remote, "--input-npz", remote_in, "--output-npz", remote_out,
                 "--runtime", self.config.runtime],
                what=f"running {artifact.name} on the evaluation set"), where=self.target)

            def fetch() -> None:
                sftp = self._sftp()
                try:
                    sftp.get(remote_out, str(local_out))
                    sftp.remove(remote_out)
                finally:
                    sftp.close()

            self._guard(f"downloading the outputs of {artifact.name}", fetch)
            return read_outputs(local_out)

    def close(self) -> None:
        """Remove this run's directory and temporaries on the board (the cache stays).

        When the link is gone, they are written down (`_orphans_file`) and removed by the
        next connection to this target. Then `on_close` runs (a labgrid place is released).
        """
        try:
            if self.client is None:
                if self.workdir:
                    self._remember_orphans()
                return
            try:
                if self.workdir:
                    self._remove(self.run_dir, self._pending)
            except Exception as exc:  # cleanup must not hide the error that ended the run
                log.warning("could not remove %s on %s: %s", self.run_dir, self.target, exc)
            finally:
                self._drop()
        finally:
            self._finish()

    def _finish(self) -> None:
        """Run `on_close` once (release what holds the board for this run)."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    # -- what a lost connection left on the board ---------------------------------------

    def _orphans_file(self) -> Path:
        from edgecomp import paths

        return paths.cache_dir() / "boards" / f"{self.target}.left-behind.json"

    def _read_orphans(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self._orphans_file().read_text())
        except (OSError, ValueError):
            return []
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def _remember_orphans(self) -> None:
        """Note this run's directory and temporaries, which a lost link kept us from
        removing: edgecomp made them, so the next run to this target removes them."""
        from edgecomp.atomic import atomic_write_json

        entry = {"run_dir": self.run_dir, "temporaries": sorted(self._pending)}
        try:
            atomic_write_json(self._orphans_file(), [*self._read_orphans(), entry])
        except OSError as exc:  # the board's own sweep removes them later
            log.warning("could not note what %s left on %s: %s", self.run_id, self.target, exc)

    def _clean_orphans(self) -> None:
        """Remove what earlier runs to this target left when their link was lost."""
        entries = self._read_orphans()
        if not entries:
            return
        for entry in entries:
            run_dir, temporaries = entry.get("run_dir"), entry.get("temporaries") or []
            if not isinstance(run_dir, str) or not all(isinstance(t, str) for t in temporaries):
                continue
            try:
                self._remove(run_dir, temporaries)
            except (_Timeout, DeviceError) as exc:
                log.warning("could not remove %s on %s: %s", run_dir, self.target, exc)
        remaining = [e for e in self._read_orphans() if e not in entries]
        if remaining:
            from edgecomp.atomic import atomic_write_json

            atomic_write_json(self._orphans_file(), remaining)
        else:
            self._orphans_file().unlink(missing_ok=True)

    def __enter__(self) -> "SshTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Timeout(Exception):
    """A command on the board ran past its time limit (the link itself was fine)."""

    def __init__(self, seconds: float):
        super().__init__(f"no result within {seconds:.0f} s")
        self.seconds = seconds


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _json_line(out: str, *, where: str, what: str) -> dict[str, Any]:
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError) as exc:
        raise DeviceError(f"{where} answered {what} with something edgecomp cannot read "
                          f"({_last_line(out)}).") from exc


def _remove_quietly(sftp, path: str) -> None:
    try:
        sftp.remove(path)
    except OSError:
        pass


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"
