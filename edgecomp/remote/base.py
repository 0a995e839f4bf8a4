"""The transport interface: the few primitives that reach a board, and the registry of transports.

A transport moves files to and from somewhere the on-device agent runs (this machine, a
board over SSH, a board held through a labgrid place) and runs the agent there. It knows
nothing of artifacts, plans or measurements: `edgecomp.pipeline.measure` puts the
measuring steps together from these primitives. A failure raises `DeviceError` with a
sentence, or the OS's or SSH library's own error (`transport_errors`), never returns a
half-done result.

Transports register themselves in `TRANSPORTS` under their kind; a target's `transport`
names the kind that reaches it (`edgecomp.remote.connect`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from edgecomp.agent.protocol import PROTOCOL_VERSION, TargetFacts
from edgecomp.errors import DeviceError
from edgecomp.registry import Registry

if TYPE_CHECKING:
    from edgecomp.hardware.targets import Target


class Transport(Protocol):
    """Somewhere the agent runs: this machine (`local`) or a board over SSH.

    A transport is a context manager: leaving it removes what this run put on the board
    (its run folder; the content-addressed cache of artifacts stays) and releases the
    connection.
    """

    name: str  # "local" or "ssh": the record's `transport` field
    target: str  # the target's name, as the user gave it
    power_probe: str  # the board's power probe, given to the agent's `measure`

    def facts(self) -> TargetFacts:
        """What a measurement record says about where it ran."""
        ...

    def push(self, local: Path, *, beside: Sequence[tuple[str, Path]] = ()) -> str:
        """Put a file on the board (once per content); its path there. `beside` holds the
        files it reads at places relative to its own (relative path, file here), which
        arrive there with it."""
        ...

    def scratch(self, name: str) -> str:
        """A new path in this run's folder on the board, for a file the agent writes."""
        ...

    def run_agent(self, args: Sequence[str], *, what: str,
                  stderr_line: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Run the agent with `args` on the board; its one JSON report (`what` names the
        work in error sentences). An agent that failed raises DeviceError. `stderr_line`,
        where given, sees each line the agent writes on stderr while it runs (its progress,
        `edgecomp.agent.progress`)."""
        ...

    def fetch(self, remote: str, local: Path) -> None:
        """Copy a file of this run from the board to `local`."""
        ...

    def clean(self, remote: Iterable[str]) -> None:
        """Remove files of this run's folder from the board now; never raises (what is
        left is removed with the run folder)."""
        ...

    def close(self) -> None:
        """Remove what this run put on the board and release the connection."""
        ...

    def __enter__(self) -> Transport:
        ...

    def __exit__(self, *exc: object) -> None:
        ...


def _declares_a_transport(cls: type) -> None:
    problems = [f"{name} is missing" for name in ("name", "open") if not hasattr(cls, name)]
    problems += [f"{method}() is missing" for method in
                 ("facts", "push", "scratch", "run_agent", "fetch", "clean", "close",
                  "__enter__", "__exit__") if not callable(getattr(cls, method, None))]
    if problems:
        raise TypeError(f"transport {cls.__name__}: {'; '.join(problems)}")


# Kind -> transport class; each has `open(target)` (None for `local`) returning it connected.
TRANSPORTS = Registry("transport", "edgecomp.remote", check=_declares_a_transport)


def transport_kind(target: Target | None) -> str:
    """The kind of transport that reaches a target (`local` for this machine)."""
    if target is None:
        return "local"
    return "labgrid" if target.labgrid is not None else "ssh"


def transport_errors() -> tuple[type[BaseException], ...]:
    """What talking to a board can raise: edgecomp's sentence, the OS's, paramiko's."""
    errors: list[type[BaseException]] = [DeviceError, OSError, EOFError]
    try:
        from paramiko import SSHException

        errors.append(SSHException)
    except ImportError:
        pass
    return tuple(errors)


def parse_agent_output(stdout: str, *, where: str, stderr: str = "") -> dict[str, Any]:
    """The agent's one JSON object, or DeviceError with its sentence."""
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        raise DeviceError(f"the agent on {where} gave no result ({detail[:300]}).")
    try:
        report = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise DeviceError(f"the agent on {where} answered with broken JSON ({exc}).") from exc
    if not isinstance(report, dict) or not report.get("ok"):
        error = report.get("error") if isinstance(report, dict) else None
        version = report.get("protocol_version") if isinstance(report, dict) else None
        if version is not None and version != PROTOCOL_VERSION:
            # An older agent refuses the options a newer edgecomp sends: say which is old.
            raise DeviceError(f"{where}: the agent there speaks protocol version {version}, "
                              f"this edgecomp speaks {PROTOCOL_VERSION} ({error}); let "
                              "edgecomp ship its own agent, or update the agent there.")
        raise DeviceError(f"{where}: {error or 'the agent failed'}.")
    return report
