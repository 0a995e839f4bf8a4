"""Boards in a shared labgrid lab: hold the target's place for one run, then give it back.

A target with a `[target.labgrid]` table names a labgrid place (or tags that pick any
free place having them). Opening its transport runs, through the lab's coordinator:

  1. reserve the place (`labgrid-client reserve name=PLACE` or `reserve KEY=VALUE ...`),
  2. wait until the coordinator allocates it, up to `target.labgrid.timeout` seconds,
  3. acquire it (`-p +TOKEN acquire`), so that nobody else uses the board meanwhile,
  4. read its resources (`-p +TOKEN env`) and take the SSH address (host, port, username)
     from its one NetworkService resource,

then connects over SSH as for any board. When the transport closes, and also when any
step fails or is interrupted, the place is released and the reservation cancelled
(`PlaceHold.release`): the lab's own locking is the only locking, and nothing is left
held. A process killed outright (SIGKILL, power loss) cannot release; the coordinator
then shows the place acquired until someone runs `labgrid-client -p PLACE release` (a
reservation whose token never reached edgecomp expires by itself within a minute).

Why `labgrid-client` in a subprocess rather than labgrid's Python client: the command
line is labgrid's documented interface (its man page, and the commands lab users
already type); `labgrid.remote.client.ClientSession` is internal, runs its own asyncio
gRPC loop inside the caller, and was rewritten when the coordinator moved from crossbar
to gRPC (labgrid 24). Of the client's outputs, `reserve --shell` (shell assignments) and
`env` (a labgrid environment file, YAML) are made to be read by programs; only the
place listing used for fail-fast checks and messages (`-v places`) is read as text, and
the tests run it against a real coordinator.

The address is used as the NetworkService gives it: edgecomp does not tunnel through
the exporter, so the board must be reachable from this machine.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgecomp.errors import DeviceError, InputError
from edgecomp.remote.ssh import SshTransport
from edgecomp.hardware.targets import LabgridPlace, Target

log = logging.getLogger(__name__)

CLIENT_S = 30.0  # one labgrid-client call that does not wait for anything
# labgrid-client reads these to pick places or an environment file of its own; edgecomp
# names the place itself, so a user's shell settings must not redirect it.
CLIENT_ENV_DROPPED = ("LG_ENV", "LG_PLACE", "LG_TOKEN", "LG_STATE", "LG_INITIAL_STATE")
TOKEN_LINE = re.compile(r"^export LG_TOKEN=([A-Za-z0-9]+)$", re.MULTILINE)
PLACE_LINE = re.compile(r"^Place '(.+)':$")
STATE_LINE = re.compile(r"^\s*state: (\w+)$", re.MULTILINE)
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


def open_place_transport(target: Target) -> SshTransport:
    """Hold the target's labgrid place and connect to its board; closing releases it."""
    hold = PlaceHold(target)
    try:
        board = hold.take()
    except BaseException:
        hold.release()
        raise
    return SshTransport(board, place=hold.place, on_close=hold.release)


class PlaceHold:
    """One run's hold on a labgrid place: its reservation token and, once acquired, its
    name. `release` gives back whatever is held and can be called any number of times."""

    def __init__(self, target: Target):
        if target.labgrid is None:
            raise ValueError(f"{target.name} is not a labgrid target")
        self.target = target
        self.config: LabgridPlace = target.labgrid
        self.program = _client_program(target.name)
        self.token: str | None = None
        self.place: str | None = None

    # -- taking the place ---------------------------------------------------------------

    def take(self) -> Target:
        """Reserve, wait for and acquire the place; the target with its board's address."""
        self._check_exists(self._places())
        self.token = self._reserve()
        log.info("%s: reserved %s (token %s); waiting for it", self.target.name,
                 self.config.describe(), self.token)
        self._wait()
        try:
            self._client("-p", "+" + self.token, "acquire")
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid could not acquire "
                              f"{self.config.describe()} ({exc}).") from exc
        resources = self._environment()
        log.info("%s: acquired labgrid place %s", self.target.name, self.place)
        return self._board(resources)

    def _places(self) -> dict[str, PlaceState]:
        try:
            return parse_places(self._client("-v", "places"))
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid could not list the places on "
                              f"{self._coordinator()} ({exc}).") from exc

    def _check_exists(self, places: dict[str, PlaceState]) -> None:
        """Fail at once for a place (or tags) the coordinator does not know."""
        config = self.config
        if config.place is not None and config.place not in places:
            known = ", ".join(sorted(places)) or "none"
            raise InputError(f"{self.target.name}: the labgrid coordinator at "
                             f"{self._coordinator()} has no place named {config.place!r} "
                             f"(its places: {known}); check target.labgrid.place.")
        if config.place is None and not any(p.has(config.tags) for p in places.values()):
            tagged = ", ".join(f"{p.name} ({_tags_text(p.tags) or 'no tags'})"
                               for p in places.values()) or "none"
            raise InputError(f"{self.target.name}: no place on the labgrid coordinator at "
                             f"{self._coordinator()} has the tags {_tags_text(config.tags)} "
                             f"(its places: {tagged}); check target.labgrid.tags.")

    def _wanted(self) -> dict[str, str]:
        """The reservation's filter: the place's name, or the tags."""
        return {"name": self.config.place} if self.config.place else dict(self.config.tags)

    def _reserve(self) -> str:
        try:
            out = self._client("reserve", "--shell",
                               *(f"{k}={v}" for k, v in self._wanted().items()))
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid refused to reserve "
                              f"{self.config.describe()} ({exc}).") from exc
        found = TOKEN_LINE.search(out)
        if found is None:
            raise DeviceError(f"{self.target.name}: labgrid-client reserve printed no "
                              f"reservation token ({_last_line(out)}).")
        return found.group(1)

    def _wait(self) -> None:
        """Wait (labgrid-client wait) until the reservation is allocated a place."""
        timeout = self.config.timeout
        try:
            out = self._client("wait", self.token, timeout=timeout, quiet_timeout=True)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.target.name}: {self.config.describe()} on "
                              f"{self._coordinator()} did not become free within "
                              f"{timeout:g} s ({self._holders()}); try again later or raise "
                              "target.labgrid.timeout.") from None
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: waiting for {self.config.describe()} "
                              f"failed ({exc}).") from exc
        states = STATE_LINE.findall(out)
        if not states or states[-1] != "allocated":
            state = states[-1] if states else "unknown"
            raise DeviceError(f"{self.target.name}: the reservation of "
                              f"{self.config.describe()} ended {state} instead of being "
                              "allocated (was the place deleted?); try again.")

    def _holders(self) -> str:
        """Who keeps the wanted places, for the sentence after a timeout."""
        try:
            places = parse_places(self._client("-v", "places"))
        except (ClientError, DeviceError):
            return "the coordinator did not say who holds it"
        said = []
        for place in (p for p in places.values() if p.has(self._wanted())):
            if place.acquired:
                said.append(f"{place.name} is acquired by {place.acquired}")
            elif place.reserved:
                said.append(f"{place.name} is reserved for another run")
        return "; ".join(said) or "no matching place was free"

    def _environment(self) -> list[dict]:
        """The acquired place's resources, from `labgrid-client env` (YAML); notes its name."""
        import yaml

        try:
            out = self._client("-p", "+" + self.token, "env")
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid could not list the resources of "
                              f"{self.config.describe()} ({exc}).") from exc
        try:
            targets = yaml.safe_load(out)["targets"]
            (place, config), = targets.items()
            resources = config.get("resources") or []
        except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DeviceError(f"{self.target.name}: labgrid-client env printed something "
                              f"edgecomp cannot read ({_last_line(out)}).") from exc
        self.place = str(place)  # known now, so a failure below still releases it by name
        return [r for r in resources if isinstance(r, dict)]

    def _board(self, resources: list[dict]) -> Target:
        """The target with the address of the place's NetworkService."""
        services = [r["NetworkService"] for r in resources if "NetworkService" in r]
        if len(services) != 1:
            other = ", ".join(sorted({k for r in resources for k in r})) or "none"
            problem = "has no NetworkService resource" if not services else \
                f"has {len(services)} NetworkService resources"
            raise DeviceError(f"{self.target.name}: labgrid place {self.place} {problem} "
                              f"(its resources: {other}); edgecomp reaches the board over SSH "
                              "at the address of exactly one NetworkService (address, "
                              "username, port) in the exporter's configuration.")
        service = services[0] if isinstance(services[0], dict) else {}
        address, port = service.get("address"), service.get("port", 22)
        user = self.config.user or service.get("username")
        if isinstance(address, str) and "%" in address:
            raise DeviceError(f"{self.target.name}: the NetworkService of labgrid place "
                              f"{self.place} is {address!r}, a link-local address that needs "
                              "a proxy through the exporter, which edgecomp does not do; "
                              "export an address this machine can reach.")
        try:
            return dataclasses.replace(self.target, host=address, port=port, user=user)
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise DeviceError(f"{self.target.name}: the NetworkService of labgrid place "
                              f"{self.place} has an address edgecomp cannot use (address "
                              f"{address!r}, port {port!r}, username {user!r}).") from exc

    # -- giving it back -----------------------------------------------------------------

    def release(self) -> None:
        """Release the place and cancel the reservation; each step is run to its end even
        when Ctrl-C arrives meanwhile (the interrupt is raised afterwards). A failure is
        logged with the command that finishes the job by hand, never raised."""
        token, self.token = self.token, None
        place, self.place = self.place, None
        if token is None:
            return
        interrupted = False
        # By name once known; before that the token finds the place, if it was acquired
        # at all (an interrupted acquire may or may not have reached the coordinator).
        steps = [("release", ["-p", place or "+" + token, "release"]),
                 ("cancel-reservation", ["cancel-reservation", token])]
        for what, args in steps:
            try:
                self._client(*args, shielded=True)
            except KeyboardInterrupt:
                interrupted = True
            except ClientError as exc:
                if not _nothing_to_give_back(str(exc)):
                    log.warning("%s: labgrid %s failed (%s); run `labgrid-client -x %s %s` "
                                "by hand", self.target.name, what, exc, self._coordinator(),
                                " ".join(args))
            except DeviceError as exc:
                log.warning("%s: labgrid %s failed (%s); run `labgrid-client -x %s %s` by "
                            "hand", self.target.name, what, exc, self._coordinator(),
                            " ".join(args))
            else:
                log.info("%s: labgrid %s %s done", self.target.name, what, place or token)
        if interrupted:
            raise KeyboardInterrupt

    # -- running labgrid-client ---------------------------------------------------------

    def _coordinator(self) -> str:
        return self.config.coordinator or os.environ.get("LG_COORDINATOR") or \
            "127.0.0.1:20408 (labgrid's default)"

    def _client(self, *args: str, timeout: float = CLIENT_S, quiet_timeout: bool = False,
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
            raise DeviceError(f"{self.target.name}: the labgrid coordinator at "
                              f"{self._coordinator()} did not answer `labgrid-client "
                              f"{' '.join(args)}` within {timeout:g} s.") from None
        except OSError as exc:
            raise InputError(f"{self.target.name}: {self.program} could not run ({exc}); "
                             "reinstall labgrid: pip install 'edgecomp[labgrid]'.") from exc
        if code == 0:
            return out
        message = _client_message(err or out)
        if UNREACHABLE in err:
            raise DeviceError(f"{self.target.name}: the labgrid coordinator at "
                              f"{self._coordinator()} cannot be reached ({_reason(err)}); "
                              "start labgrid-coordinator there, or set "
                              "target.labgrid.coordinator or LG_COORDINATOR.")
        raise ClientError(message)


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


def _nothing_to_give_back(message: str) -> bool:
    """labgrid's answers meaning the place or reservation was not held (any more)."""
    return any(text in message for text in ("is not acquired", "matches nothing",
                                            "does not exist"))


def _client_message(text: str) -> str:
    line = _last_line(text)
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


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"
