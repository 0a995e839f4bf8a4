"""SSH transport: push files to a board's content-addressed cache, run the agent, fetch its
outputs, clean up.

Uploads go to a temporary name, are hashed on the board, then renamed into the cache; a
cached copy is hashed again before it is used. Each run works in a run directory of its
own, removed when the transport closes (`edgecomp.remote.ssh_board` says what edgecomp runs
on the board and what it may remove there).

Faults: every call on the board goes through one boundary (`SshTransport._guard`) where a
paramiko, socket or OS error, or a timeout, becomes a `DeviceError` sentence. A dropped
link is reconnected once; when that fails too, the rest of the run fails fast with the
reason instead of waiting on a dead connection again (`edgecomp.remote.ssh_link` finds a
frozen link).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from edgecomp.agent.protocol import TargetFacts
from edgecomp.errors import DeviceError, last_line
from edgecomp.hardware.targets import Target
from edgecomp.hashing import file_sha256
from edgecomp.remote.agent_bundle import agent_pyz
from edgecomp.remote.base import TRANSPORTS, parse_agent_output
from edgecomp.remote.ssh_board import (CACHE_CHECK, CLEANUP, COMMIT_UPLOAD, PREFLIGHT, RUN_ID,
                                       RUN_MARKER, TMP_NAME, forget_left_behind, left_behind,
                                       remember_left_behind)
from edgecomp.remote.ssh_link import (TRANSFER_STALL_S, CommandTimeout, LinkLost, alive,
                                      close_quietly, describe, execute, json_line,
                                      open_client, open_sftp, remove_quietly)

log = logging.getLogger(__name__)

T = TypeVar("T")


@TRANSPORTS.register("ssh")
class SshTransport:
    """A connection to one board; the agent runs there with the board's python."""

    name = "ssh"

    def __init__(self, target: Target, *, place: str | None = None,
                 on_close: Callable[[], None] | None = None):
        """Connect to `target`. A board held through a labgrid place names it (`place`, kept
        in the facts) and gives `on_close`, which releases the place; it runs exactly once,
        when the transport closes or when connecting fails."""
        self.target = target.name
        self.config = target
        self.power_probe = target.power_probe
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

    @classmethod
    def open(cls, target: Target) -> SshTransport:
        return cls(target)

    def facts(self) -> TargetFacts:
        return TargetFacts(name=self.target, transport="ssh", host=self.config.host,
                           profile=self.config.profile, board_python=self.board_python,
                           place=self.place)

    # -- connection -------------------------------------------------------------------

    def _connect(self) -> None:
        import paramiko

        self.client = open_client(self.config)
        try:
            self._preflight()
            self._clean_left_behind()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self._drop()
            raise DeviceError(f"{self.target} stopped answering while edgecomp prepared "
                              f"{self.config.workdir} ({describe(exc)}).") from exc
        except BaseException:
            self._drop()
            raise

    def _preflight(self) -> None:
        timeout = max(5.0, 3 * self.config.connect_timeout)
        try:
            code, out, err = self._exec(
                [self.config.python, "-c", PREFLIGHT, self.config.workdir, self.run_id,
                 RUN_MARKER, RUN_ID.pattern, TMP_NAME.pattern], timeout=timeout)
        except CommandTimeout as exc:
            raise DeviceError(f"{self.target}: {self.config.python} did not prepare "
                              f"{self.config.workdir} within {timeout:.0f} s; check that "
                              "target.python starts on the board and the disk "
                              "answers.") from exc
        if code != 0:
            raise DeviceError(f"{self.target}: {self.config.python} could not prepare "
                              f"{self.config.workdir} ({last_line(err)}); check "
                              "target.python and target.workdir.")
        facts = json_line(out, where=self.target, what="the preflight")
        self.workdir = facts["workdir"]
        self.board_python = facts["python"]

    def _drop(self) -> None:
        """Close the connection without talking to the board (the link may be gone)."""
        client, self.client = self.client, None
        close_quietly(client)

    def _alive(self) -> bool:
        return alive(self.client, self.config.connect_timeout)

    def _exec(self, argv: list[str], *, timeout: float,
              stderr_line: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        return execute(self.client, argv, target=self.config, timeout=timeout,
                       stderr_line=stderr_line)

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
            except CommandTimeout as exc:
                raise DeviceError(f"{self.target} did not finish {what} within "
                                  f"{exc.seconds:.0f} s.") from exc
            except DeviceError as exc:
                if self.client is None:  # reconnecting failed: do not try again this run
                    self._lost = f"the connection was lost earlier in this run ({exc})"
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if not isinstance(exc, LinkLost) and self._alive():  # the board's error
                    raise DeviceError(f"{what} on {self.target} failed "
                                      f"({describe(exc)}).") from exc
                self._drop()
                if attempt == 2:
                    self._lost = (f"the connection was lost while {what} "
                                  f"({describe(exc)}), also after reconnecting once")
                    raise DeviceError(f"lost the connection to {self.target} while {what} "
                                      f"({describe(exc)}), also after one retry; check the "
                                      "board and the network.") from exc
                log.warning("connection to %s lost while %s (%s); reconnecting once",
                            self.target, what, describe(exc))
                time.sleep(1.0)
                try:
                    self._connect()
                except DeviceError as again:
                    self._lost = (f"the connection was lost while {what} "
                                  f"({describe(exc)}) and reconnecting failed")
                    raise DeviceError(f"lost the connection to {self.target} while {what} "
                                      f"({describe(exc)}), and reconnecting failed: "
                                      f"{again}") from exc
                self._clean_pending()
        raise AssertionError("unreachable")

    @property
    def run_dir(self) -> str:
        return f"{self.workdir}/runs/{self.run_id}"

    # -- the primitives -----------------------------------------------------------------

    def push(self, local: Path, *, name: str | None = None,
             beside: Sequence[tuple[str, Path]] = ()) -> str:
        """Upload `local` to the board's cache unless an intact copy is there; its path.

        With files it reads `beside` it, all of them go into a cache folder named by the
        hash of every file and place, so models that name their data files alike never
        share them; each file is hashed before a cached copy is used, as any upload."""
        if beside:
            return self._guard(f"uploading {local.name}", lambda: self._push_with(local, beside))
        return self._guard(f"uploading {local.name}", lambda: self._push(local, name))

    def scratch(self, name: str) -> str:
        return f"{self.run_dir}/{secrets.token_hex(4)}-{name}"

    def run_agent(self, args: Sequence[str], *, what: str,
                  stderr_line: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Run the agent (reconnecting once after a dropped connection)."""
        agent = self._agent()

        def call() -> dict[str, Any]:
            # --watch-host: the agent exits when this connection goes away, which frees
            # the board lock at once (see edgecomp.agent.watchdog).
            code, out, err = self._exec([self.config.python, agent, "--watch-host", *args],
                                        timeout=self.config.command_timeout,
                                        stderr_line=stderr_line)
            return parse_agent_output(out, where=self.target, stderr=err)

        return self._guard(what, call)

    def fetch(self, remote: str, local: Path) -> None:
        def get() -> None:
            sftp = open_sftp(self.client)
            try:
                sftp.get(remote, str(local))
            finally:
                sftp.close()

        self._guard(f"downloading {Path(remote).name}", get)

    def clean(self, remote: Iterable[str]) -> None:
        mine = [path for path in remote if path.startswith(self.run_dir + "/")]
        if not mine or self.client is None or self._lost is not None:
            return  # removed with the run directory, or noted for the next run

        def remove() -> None:
            sftp = open_sftp(self.client)
            try:
                for path in mine:
                    remove_quietly(sftp, path)
            finally:
                sftp.close()

        try:
            self._guard("removing this run's files", remove)
        except DeviceError as exc:  # the run directory goes at close, with them
            log.warning("could not remove files of this run on %s: %s", self.target, exc)

    # -- content-addressed uploads ------------------------------------------------------

    def _push(self, local: Path, name: str | None, sha: str | None = None) -> str:
        sha = sha or file_sha256(local)  # given by a caller that has hashed it already
        final = f"{self.workdir}/cache/{name or sha + local.suffix}"
        code, out, err = self._exec([self.config.python, "-c", CACHE_CHECK, final, sha],
                                    timeout=120)
        if code != 0:
            raise DeviceError(f"{self.target} could not check its cache for {local.name} "
                              f"({last_line(err)}).")
        state = json_line(out, where=self.target, what="the cache check")
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
        sftp = open_sftp(self.client)
        try:
            try:
                sftp.put(str(local), tmp)
            except OSError as exc:
                if isinstance(exc, LinkLost) or not self._alive():
                    raise LinkLost(describe(exc)) from exc
                remove_quietly(sftp, tmp)
                self._pending.discard(tmp)
                if isinstance(exc, TimeoutError):
                    raise DeviceError(f"uploading {local.name} to {self.target} stalled: the "
                                      f"board acknowledged nothing for {TRANSFER_STALL_S:.0f} "
                                      "s.") from exc
                raise DeviceError(f"uploading {local.name} to {self.target} failed "
                                  f"({describe(exc)}); the board's disk may be full "
                                  f"({free // (1 << 20)} MiB were free).") from exc
        finally:
            sftp.close()
        code, _, err = self._exec([self.config.python, "-c", COMMIT_UPLOAD, tmp, final, sha],
                                  timeout=120)
        self._pending.discard(tmp)
        if code != 0:
            raise DeviceError(f"{local.name} arrived damaged on {self.target} "
                              f"({last_line(err)}); try again.")
        self.bytes_sent += size
        self.files_sent += 1
        return final

    def _push_with(self, local: Path, beside: Sequence[tuple[str, Path]]) -> str:
        sha = file_sha256(local)
        hashed = [(place, path, file_sha256(path)) for place, path in beside]
        parts = [sha, *(f"{place}:{data}" for place, _, data in hashed)]
        folder = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        for place, path, data in hashed:
            self._push(path, f"{folder}/{place}", data)
        return self._push(local, f"{folder}/{sha}{local.suffix}", sha)

    def _agent(self) -> str:
        """The agent zipapp's path in the board's cache (its name carries its hash)."""
        if self._agent_remote is None:
            bundle = agent_pyz()
            self._agent_remote = self.push(bundle, name=bundle.name)
        return self._agent_remote

    # -- removing what this run made ------------------------------------------------------

    def _remove(self, run_dir: str, temporaries) -> None:
        """Remove a run directory of edgecomp's ("" for none) and upload temporaries on the
        board (CLEANUP checks both are edgecomp's); DeviceError when the board says no."""
        code, _, err = self._exec([self.config.python, "-c", CLEANUP, run_dir, RUN_MARKER,
                                   TMP_NAME.pattern, *sorted(temporaries)], timeout=30)
        if code != 0:
            raise DeviceError(f"{self.target} could not remove {run_dir or 'temporaries'} "
                              f"({last_line(err)}).")

    def _clean_pending(self) -> None:
        """Remove upload temporaries a dropped connection left (after reconnecting)."""
        if not self._pending or self.client is None:
            return
        try:
            self._remove("", self._pending)
            self._pending.clear()
        except Exception as exc:  # the next run's preflight sweeps them
            log.warning("could not remove upload temporaries on %s: %s", self.target, exc)

    def _clean_left_behind(self) -> None:
        """Remove what earlier runs to this target left when their link was lost."""
        entries = left_behind(self.target)
        if not entries:
            return
        for entry in entries:
            run_dir, temporaries = entry.get("run_dir"), entry.get("temporaries") or []
            if not isinstance(run_dir, str) or not all(isinstance(t, str) for t in temporaries):
                continue
            try:
                self._remove(run_dir, temporaries)
            except (CommandTimeout, DeviceError) as exc:
                log.warning("could not remove %s on %s: %s", run_dir, self.target, exc)
        forget_left_behind(self.target, entries)

    def close(self) -> None:
        """Remove this run's directory and temporaries on the board (the cache stays).

        When the link is gone, they are noted (`ssh_board.remember_left_behind`) and
        removed by the next connection to this target. Then `on_close` runs (a labgrid
        place is released).
        """
        try:
            if self.client is None:
                if self.workdir:
                    remember_left_behind(self.target, self.run_dir, sorted(self._pending))
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

    def __enter__(self) -> SshTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
