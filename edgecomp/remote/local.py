"""The `local` target: the same on-device agent zipapp, run in a subprocess here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Sequence

from edgecomp.agent.protocol import TargetFacts
from edgecomp.errors import DeviceError
from edgecomp.remote.agent_bundle import agent_pyz
from edgecomp.remote.base import TRANSPORTS, parse_agent_output


# How long the pipes of an agent that ended may take to reach their end (a process it
# started could hold them open).
DRAIN_S = 10.0


@TRANSPORTS.register("local")
class LocalTransport:
    """Runs the agent zipapp with this Python; files stay where they are."""

    name = "local"
    power_probe = "none"

    def __init__(self, *, timeout: float = 3600.0):
        self.target = "local"
        self.timeout = timeout
        self._run_dir: tempfile.TemporaryDirectory | None = None
        self._count = 0

    @classmethod
    def open(cls, target: None = None) -> LocalTransport:
        return cls()

    def facts(self) -> TargetFacts:
        return TargetFacts(name="local", transport="local")

    def push(self, local: Path, *, beside: Sequence[tuple[str, Path]] = ()) -> str:
        return str(local)  # the agent reads it in place, and what it reads beside it

    def scratch(self, name: str) -> str:
        if self._run_dir is None:
            self._run_dir = tempfile.TemporaryDirectory(prefix="edgecomp-run-")
        self._count += 1
        return str(Path(self._run_dir.name) / f"{self._count}-{name}")

    def run_agent(self, args: Sequence[str], *, what: str,
                  stderr_line: Callable[[str], None] | None = None) -> dict[str, Any]:
        # The agent's stdin is a pipe only this process holds open (--watch-host): when
        # this process dies, the agent exits and frees the board lock at once.
        read_end, write_end = os.pipe()
        out: list[str] = []
        err: list[str] = []
        try:
            with subprocess.Popen([sys.executable, str(agent_pyz()), "--watch-host", *args],
                                  stdin=read_end, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) as agent:
                os.close(read_end)
                read_end = None
                # Both pipes are drained as the agent writes, so its stderr lines (its
                # progress) arrive while it runs, not when it ends.
                readers = [threading.Thread(target=_drain, args=(agent.stdout, out, None),
                                            daemon=True),
                           threading.Thread(target=_drain, args=(agent.stderr, err,
                                                                 stderr_line), daemon=True)]
                for reader in readers:
                    reader.start()
                try:
                    agent.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired as exc:
                    agent.kill()
                    agent.wait()
                    raise DeviceError(f"the local agent did not finish {what} within "
                                      f"{self.timeout:.0f} s.") from exc
                finally:
                    if agent.poll() is not None:  # ended: what it wrote is read at once
                        for reader in readers:
                            reader.join(timeout=DRAIN_S)
        finally:
            os.close(write_end)
            if read_end is not None:
                os.close(read_end)
        return parse_agent_output("".join(out), where="local", stderr="".join(err))

    def fetch(self, remote: str, local: Path) -> None:
        if Path(remote) != Path(local):
            shutil.copyfile(remote, local)

    def clean(self, remote: Iterable[str]) -> None:
        for path in remote:
            Path(path).unlink(missing_ok=True)

    def close(self) -> None:
        if self._run_dir is not None:
            self._run_dir.cleanup()
            self._run_dir = None

    def __enter__(self) -> LocalTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drain(stream: IO[str], into: list[str], each: Callable[[str], None] | None) -> None:
    """Read a pipe to its end, keeping its lines and showing each to `each`."""
    for text in stream:
        into.append(text)
        if each is not None:
            each(text.rstrip("\n"))
