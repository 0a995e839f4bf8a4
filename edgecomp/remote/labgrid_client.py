"""labgrid-client in a subprocess: its calls with the lab's coordinator, its errors as
sentences, and the place listing read back.

Why `labgrid-client` in a subprocess rather than labgrid's Python client: the command line
is labgrid's documented interface (its man page, and the commands lab users already type);
`labgrid.remote.client.ClientSession` is internal, runs its own asyncio gRPC loop inside
the caller, and was rewritten when the coordinator moved from crossbar to gRPC (labgrid
24). Of the client's outputs, `reserve --shell` (shell assignments) and `env` (a labgrid
environment file, YAML) are made to be read by programs; only the place listing used for
fail-fast checks and messages (`-v places`) is read as text, and the tests run it against
a real coordinator.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgecomp.errors import DeviceError, InputError, last_line
from edgecomp.hardware.targets import LabgridPlace


CLIENT_S = 30.0  # one labgrid-client call that does not wait for anything


# labgrid-client reads these to pick places or an environment file of its own; edgecomp
# names the place itself, so a user's shell settings must not redirect it.
CLIENT_ENV_DROPPED = ("LG_ENV", "LG_PLACE", "LG_TOKEN", "LG_STATE", "LG_INITIAL_STATE")


PLACE_LINE = re.compile(r"^Place '(.+)':$")


UNREACHABLE = "Could not connect to coordinator"


class ClientError(Exception):
    """labgrid-client exited with an error; the message is its last line, cleaned."""


@dataclasses.dataclass(frozen=True)
class PlaceState:
    """What the coordinator says about one place: its tags and who holds it."""

    name: str
    tags: dict[str, str]
    acquired: str | None  # "host/user", or None when free
    reserved: bool  # allocated to a reservation (someone's, maybe ours)

    def has(self, tags: dict[str, str]) -> bool:
        own = {**self.tags, "name": self.name}  # the coordinator matches `name` too
        return all(own.get(key) == value for key, value in tags.items())


def parse_places(text: str) -> dict[str, PlaceState]:
    """`labgrid-client -v places`: a `Place 'NAME':` line, then its `  key: value` lines."""
    fields: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        found = PLACE_LINE.match(line)
        if found:
            current = fields.setdefault(found.group(1), {})
        elif current is not None and line.startswith("  ") and not line.startswith("   "):
            key, sep, value = line.strip().partition(": ")
            if sep:
                current[key] = value
    places = {}
    for name, values in fields.items():
        tags = dict(pair.split("=", 1) for pair in values.get("tags", "").split(", ")
                    if "=" in pair)
        acquired = values.get("acquired")
        places[name] = PlaceState(name=name, tags=tags,
                                  acquired=None if acquired in (None, "None") else acquired,
                                  reserved="reservation" in values)
    return places


class LabgridClient:
    """labgrid-client for one target's lab: the program beside this python and the
    coordinator its target names (else $LG_COORDINATOR, else labgrid's default)."""

    def __init__(self, target: str, config: LabgridPlace):
        self.target = target
        self.config = config
        self.program = _client_program(target)

    @property
    def coordinator(self) -> str:
        """The coordinator's address, for sentences."""
        return self.config.coordinator or os.environ.get("LG_COORDINATOR") or \
            "127.0.0.1:20408 (labgrid's default)"

    def run(self, *args: str, timeout: float = CLIENT_S, quiet_timeout: bool = False,
                shielded: bool = False) -> str:
        """Run labgrid-client; its stdout. ClientError for a refusal, DeviceError when the
        coordinator cannot be reached. `quiet_timeout` lets subprocess.TimeoutExpired out
        (a wait that may run out); `shielded` runs a cleanup step to its end through Ctrl-C."""
        command = [self.program]
        if self.config.coordinator:
            command += ["-x", self.config.coordinator]
        command += list(args)
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROPPED}
        try:
            if shielded:
                code, out, err = _run_to_end(command, env=env, timeout=timeout)
            else:
                done = subprocess.run(command, capture_output=True, text=True, env=env,
                                      stdin=subprocess.DEVNULL, timeout=timeout)
                code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired:
            if quiet_timeout:
                raise
            raise DeviceError(f"{self.target}: the labgrid coordinator at "
                              f"{self.coordinator} did not answer `labgrid-client "
                              f"{' '.join(args)}` within {timeout:g} s.") from None
        except OSError as exc:
            raise InputError(f"{self.target}: {self.program} could not run ({exc}); "
                             "reinstall labgrid: pip install 'edgecomp[labgrid]'.") from exc
        if code == 0:
            return out
        message = _client_message(err or out)
        if UNREACHABLE in err:
            raise DeviceError(f"{self.target}: the labgrid coordinator at "
                              f"{self.coordinator} cannot be reached ({_reason(err)}); "
                              "start labgrid-coordinator there, or set "
                              "target.labgrid.coordinator or LG_COORDINATOR.")
        raise ClientError(message)


def _client_program(target: str) -> str:
    """labgrid-client beside this python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("labgrid-client")
    found = str(beside) if beside.is_file() else shutil.which("labgrid-client")
    if found is None:
        raise InputError(f"{target} is a board in a labgrid lab, but labgrid-client is not "
                         "installed here; install it with: pip install 'edgecomp[labgrid]'.")
    return found


def _run_to_end(command: list[str], *, env: dict[str, str],
                timeout: float) -> tuple[int, str, str]:
    """Run a cleanup command in its own session (a Ctrl-C at the terminal does not reach
    it) and wait for it even through Ctrl-C here; the interrupt is raised afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    interrupted = timed_out = False
    while True:
        try:
            out, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            break
        except KeyboardInterrupt:
            interrupted = True
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            timed_out = True
            break
    if interrupted:
        raise KeyboardInterrupt
    if timed_out:
        return 1, out, f"no answer within {timeout:g} s"
    return process.returncode, out, err


def _client_message(text: str) -> str:
    line = last_line(text)
    for prefix in ("labgrid-client: ", "Server error: ", "Error: "):
        line = line.removeprefix(prefix)
    return line


def _reason(err: str) -> str:
    """The gRPC reason labgrid logs before 'Could not connect to coordinator'."""
    for line in err.splitlines():
        if "coordinator is unavailable:" in line:
            reason = line.split("coordinator is unavailable:", 1)[1].strip()
            return reason.rsplit(": ", 1)[-1][:200] if ": " in reason else reason[:200]
    return "no answer"
