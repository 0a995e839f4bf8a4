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

The address is used as the NetworkService gives it: edgecomp does not tunnel through
the exporter, so the board must be reachable from this machine.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess

from edgecomp.errors import DeviceError, InputError, last_line
from edgecomp.hardware.targets import LabgridPlace, Target
from edgecomp.remote.base import TRANSPORTS
from edgecomp.remote.labgrid_client import ClientError, LabgridClient, PlaceState, parse_places
from edgecomp.remote.ssh import SshTransport

log = logging.getLogger(__name__)

TOKEN_LINE = re.compile(r"^export LG_TOKEN=([A-Za-z0-9]+)$", re.MULTILINE)
STATE_LINE = re.compile(r"^\s*state: (\w+)$", re.MULTILINE)


@TRANSPORTS.register("labgrid")
class LabgridTransport(SshTransport):
    """SSH to a board held through its labgrid place for this run; closing releases it."""

    @classmethod
    def open(cls, target: Target) -> LabgridTransport:
        """Hold the target's labgrid place and connect to its board."""
        hold = PlaceHold(target)
        try:
            board = hold.take()
        except BaseException:
            hold.release()
            raise
        return cls(board, place=hold.place, on_close=hold.release)


class PlaceHold:
    """One run's hold on a labgrid place: its reservation token and, once acquired, its
    name. `release` gives back whatever is held and can be called any number of times."""

    def __init__(self, target: Target):
        if target.labgrid is None:
            raise ValueError(f"{target.name} is not a labgrid target")
        self.target = target
        self.config: LabgridPlace = target.labgrid
        self.client = LabgridClient(target.name, target.labgrid)
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
            self.client.run("-p", "+" + self.token, "acquire")
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid could not acquire "
                              f"{self.config.describe()} ({exc}).") from exc
        resources = self._environment()
        log.info("%s: acquired labgrid place %s", self.target.name, self.place)
        return self._board(resources)

    def _places(self) -> dict[str, PlaceState]:
        try:
            return parse_places(self.client.run("-v", "places"))
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid could not list the places on "
                              f"{self.client.coordinator} ({exc}).") from exc

    def _check_exists(self, places: dict[str, PlaceState]) -> None:
        """Fail at once for a place (or tags) the coordinator does not know."""
        config = self.config
        if config.place is not None and config.place not in places:
            known = ", ".join(sorted(places)) or "none"
            raise InputError(f"{self.target.name}: the labgrid coordinator at "
                             f"{self.client.coordinator} has no place named {config.place!r} "
                             f"(its places: {known}); check target.labgrid.place.")
        if config.place is None and not any(p.has(config.tags) for p in places.values()):
            tagged = ", ".join(f"{p.name} ({_tags_text(p.tags) or 'no tags'})"
                               for p in places.values()) or "none"
            raise InputError(f"{self.target.name}: no place on the labgrid coordinator at "
                             f"{self.client.coordinator} has the tags {_tags_text(config.tags)} "
                             f"(its places: {tagged}); check target.labgrid.tags.")

    def _wanted(self) -> dict[str, str]:
        """The reservation's filter: the place's name, or the tags."""
        return {"name": self.config.place} if self.config.place else dict(self.config.tags)

    def _reserve(self) -> str:
        try:
            out = self.client.run("reserve", "--shell",
                               *(f"{k}={v}" for k, v in self._wanted().items()))
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid refused to reserve "
                              f"{self.config.describe()} ({exc}).") from exc
        found = TOKEN_LINE.search(out)
        if found is None:
            raise DeviceError(f"{self.target.name}: labgrid-client reserve printed no "
                              f"reservation token ({last_line(out)}).")
        return found.group(1)

    def _wait(self) -> None:
        """Wait (labgrid-client wait) until the reservation is allocated a place."""
        timeout = self.config.timeout
        try:
            out = self.client.run("wait", self.token, timeout=timeout, quiet_timeout=True)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.target.name}: {self.config.describe()} on "
                              f"{self.client.coordinator} did not become free within "
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
            places = parse_places(self.client.run("-v", "places"))
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
            out = self.client.run("-p", "+" + self.token, "env")
        except ClientError as exc:
            raise DeviceError(f"{self.target.name}: labgrid could not list the resources of "
                              f"{self.config.describe()} ({exc}).") from exc
        try:
            targets = yaml.safe_load(out)["targets"]
            (place, config), = targets.items()
            resources = config.get("resources") or []
        except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DeviceError(f"{self.target.name}: labgrid-client env printed something "
                              f"edgecomp cannot read ({last_line(out)}).") from exc
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
                self.client.run(*args, shielded=True)
            except KeyboardInterrupt:
                interrupted = True
            except ClientError as exc:
                if not _nothing_to_give_back(str(exc)):
                    log.warning("%s: labgrid %s failed (%s); run `labgrid-client -x %s %s` "
                                "by hand", self.target.name, what, exc, self.client.coordinator,
                                " ".join(args))
            except DeviceError as exc:
                log.warning("%s: labgrid %s failed (%s); run `labgrid-client -x %s %s` by "
                            "hand", self.target.name, what, exc, self.client.coordinator,
                            " ".join(args))
            else:
                log.info("%s: labgrid %s %s done", self.target.name, what, place or token)
        if interrupted:
            raise KeyboardInterrupt


def _nothing_to_give_back(message: str) -> bool:
    """labgrid's answers meaning the place or reservation was not held (any more)."""
    return any(text in message for text in ("is not acquired", "matches nothing",
                                            "does not exist"))


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
