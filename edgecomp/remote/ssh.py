"""SSH transport (paramiko): push artifacts to a board's cache, run the agent, clean up.

Safety rules: host keys are checked against known_hosts (the user's and the
inventory's); an unknown key is refused with its fingerprint and the command to trust
it; a changed key is refused and never replaced. No agent forwarding. Every remote
command is built from an argument list with shlex quoting. Uploads go to a temporary
name, are hashed on the board, then renamed into a content-addressed cache.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import shlex
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgecomp.errors import DeviceError
from edgecomp.hashing import file_sha256
from edgecomp.agent.protocol import AgentInfo, MeasureReport, RunReport, TargetFacts
from edgecomp.remote.agent_bundle import agent_pyz
from edgecomp.remote.base import (MeasureOptions, parse_agent_output, parse_report,
                                  read_outputs, write_inputs)
from edgecomp.targets import Target, inventory_known_hosts

log = logging.getLogger(__name__)

KEEPALIVE_S = 15

# Run on the board with its python: resolve the work directory, create the cache and
# this run's scratch directory, and report free space (one round trip).
PREFLIGHT = """
import json, os, shutil, sys, time
work = os.path.abspath(os.path.expanduser(sys.argv[1]))
runs = os.path.join(work, "runs")
if os.path.isdir(runs):  # scratch left by runs whose connection died (older than 6 h)
    for old in os.listdir(runs):
        if time.time() - os.path.getmtime(os.path.join(runs, old)) > 6 * 3600:
            shutil.rmtree(os.path.join(runs, old), ignore_errors=True)
for sub in ("cache", os.path.join("runs", sys.argv[2])):
    path = os.path.join(work, sub)
    if not os.path.isdir(path):
        os.makedirs(path)
print(json.dumps({"workdir": work, "free_bytes": shutil.disk_usage(work).free,
                  "python": sys.version.split()[0]}))
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

REMOVE_TREE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"


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
        raise DeviceError(
            f"the host key of {self.target.name} ({hostname}) is not known: "
            f"{key.get_name()} {key_fingerprint(key)}. If that is your board's key, trust it "
            f"with `edgecomp targets trust {self.target.name}`.")


def fetch_host_key(target: Target):
    """The key the board presents now (for `targets trust`), without logging in."""
    import paramiko

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

    def __init__(self, target: Target):
        self.target = target.name
        self.config = target
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)
        self.bytes_sent = 0
        self.files_sent = 0
        self.client = None
        self.workdir: str | None = None
        self.board_python: str | None = None
        self._agent_remote: str | None = None
        self._connect()

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
                           allow_agent=identity is None, look_for_keys=identity is None)
        except paramiko.BadHostKeyException as exc:
            raise DeviceError(
                f"WARNING: the host key of {target.name} ({target.host}:{target.port}) has "
                f"CHANGED: it now presents {key_fingerprint(exc.key)}, known_hosts has "
                f"{key_fingerprint(exc.expected_key)}. This can mean someone is intercepting "
                "the connection. edgecomp will not connect; if the board was reinstalled, "
                "remove the old key from known_hosts and trust the new one.") from exc
        except paramiko.AuthenticationException as exc:
            raise DeviceError(f"{target.name} refused authentication as {target.user!r} "
                              f"({exc}); check target.user and target.identity_file.") from exc
        except DeviceError:
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise DeviceError(f"cannot reach {target.name} at {target.host}:{target.port} "
                              f"({exc or type(exc).__name__}); is the board on and sshd "
                              "running?") from exc
        client.get_transport().set_keepalive(KEEPALIVE_S)
        self.client = client
        self._preflight()

    def _preflight(self) -> None:
        code, out, err = self._exec([self.config.python, "-c", PREFLIGHT, self.config.workdir,
                                     self.run_id], timeout=60)
        if code != 0:
            raise DeviceError(f"{self.target}: {self.config.python} could not prepare "
                              f"{self.config.workdir} ({_last_line(err)}); check "
                              "target.python and target.workdir.")
        facts = json.loads(out.strip().splitlines()[-1])
        self.workdir = facts["workdir"]
        self.board_python = facts["python"]
        self.free_bytes = facts["free_bytes"]

    @property
    def run_dir(self) -> str:
        return f"{self.workdir}/runs/{self.run_id}"

    def _exec(self, argv: list[str], *, timeout: float) -> tuple[int, str, str]:
        """Run a command given as an argument list; every argument is shell-quoted."""
        command = shlex.join(argv)
        env = self.config.env
        if env:
            command = shlex.join(["env", *(f"{k}={v}" for k, v in env.items())]) + " " + command
        stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        stdin.close()
        out = stdout.read().decode("utf-8", "replace")
        err = stderr.read().decode("utf-8", "replace")
        status = stdout.channel.recv_exit_status()
        if status == -1:  # the channel closed without an exit status: the link went away
            raise EOFError("the connection closed before the command finished")
        return status, out, err

    # -- content-addressed uploads ------------------------------------------------------

    def push(self, local: Path, *, name: str | None = None) -> str:
        """Upload `local` to the board's cache unless it is already there; return its path."""
        sha = file_sha256(local)
        final = f"{self.workdir}/cache/{name or sha + local.suffix}"
        sftp = self.client.open_sftp()
        try:
            try:
                if sftp.stat(final).st_size == local.stat().st_size:
                    return final
            except FileNotFoundError:
                pass
            size = local.stat().st_size
            if size > self.free_bytes:
                raise DeviceError(f"{self.target} has {self.free_bytes // (1 << 20)} MiB free "
                                  f"in {self.workdir}, too little for {local.name} "
                                  f"({size // (1 << 20)} MiB); free some disk space.")
            tmp = f"{self.workdir}/cache/.tmp-{sha[:16]}-{secrets.token_hex(4)}"
            try:
                sftp.put(str(local), tmp)
            except OSError as exc:
                raise DeviceError(f"uploading {local.name} to {self.target} failed ({exc}); "
                                  "the board's disk may be full.") from exc
        finally:
            sftp.close()
        code, _, err = self._exec([self.config.python, "-c", COMMIT_UPLOAD, tmp, final, sha],
                                  timeout=120)
        if code != 0:
            raise DeviceError(f"{local.name} arrived damaged on {self.target} "
                              f"({_last_line(err)}); try again.")
        self.bytes_sent += size
        self.files_sent += 1
        return final

    def _agent(self) -> str:
        """The agent zipapp's path in the board's cache (its name carries its hash)."""
        if self._agent_remote is None:
            bundle = agent_pyz()
            self._agent_remote = self.push(bundle, name=bundle.name)
        return self._agent_remote

    # -- agent commands -----------------------------------------------------------------

    def _run_agent(self, args: list[str], *, what: str) -> dict[str, Any]:
        """Run the agent; after a dropped connection reconnect once and retry."""
        import paramiko

        for attempt in (1, 2):
            try:
                code, out, err = self._exec([self.config.python, self._agent(), *args],
                                            timeout=self.config.command_timeout)
                return parse_agent_output(out, where=self.target, stderr=err)
            except (paramiko.SSHException, EOFError, OSError, socket.timeout) as exc:
                if isinstance(exc, socket.timeout):
                    raise DeviceError(f"{self.target} did not finish {what} within "
                                      f"{self.config.command_timeout:.0f} s.") from exc
                if attempt == 2:
                    raise DeviceError(f"lost the connection to {self.target} while {what} "
                                      f"({exc or type(exc).__name__}), also after one retry; "
                                      "check the board and the network.") from exc
                log.warning("connection to %s dropped while %s; reconnecting once",
                            self.target, what)
                try:
                    self._reconnect()
                except DeviceError as again:
                    raise DeviceError(f"lost the connection to {self.target} while {what} "
                                      f"({exc or type(exc).__name__}), and reconnecting "
                                      f"failed: {again}") from exc
        raise AssertionError("unreachable")

    def _reconnect(self) -> None:
        try:
            self.client.close()
        finally:
            self.client = None
        time.sleep(1.0)
        self._connect()

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
            profile=self.config.profile, board_python=self.board_python))

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
            sftp = self.client.open_sftp()
            try:
                sftp.get(remote_out, str(local_out))
            finally:
                sftp.close()
            return read_outputs(local_out)

    def close(self) -> None:
        """Remove this run's scratch directory on the board (the cache stays)."""
        if self.client is None:
            return
        try:
            if self.workdir:
                self._exec([self.config.python, "-c", REMOVE_TREE, self.run_dir], timeout=30)
        except Exception as exc:  # cleanup must not hide the error that ended the run
            log.warning("could not remove %s on %s: %s", self.run_dir, self.target, exc)
        finally:
            self.client.close()
            self.client = None

    def __enter__(self) -> "SshTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"
