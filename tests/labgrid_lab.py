"""A real labgrid lab for the tests: `labgrid-coordinator` and `labgrid-exporter` started as
ordinary processes on a free loopback port, in a temporary folder (the coordinator keeps
its places.yaml there).

    lab = Lab().start()
    lab.export("sim-lab", {"pi4-a": {"NetworkService": {"address": ..., "port": ...}}})
    lab.add_place("pi4-a", "sim-lab/pi4-a/*", tags={"board": "pi4"})
    lab.client("-p", "pi4-a", "acquire", user="colleague")
    lab.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def program(name: str) -> str | None:
    """A labgrid command beside this python (the virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A coordinator and its exporters; `client` runs labgrid-client against them."""

    def __init__(self) -> None:
        if program("labgrid-coordinator") is None:
            raise FileNotFoundError("labgrid is not installed: pip install 'edgecomp[labgrid]'")
        self.home = Path(tempfile.mkdtemp(prefix="edgecomp-labgrid-"))
        self.address = f"127.0.0.1:{free_port()}"
        self.processes: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.home / f"{name}.log", "wb")
        # Their own session: a test that sends Ctrl-C to edgecomp must not reach the lab.
        self.processes[name] = subprocess.Popen(command, cwd=self.home, stdout=log,
                                                stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL,
                                                start_new_session=True)
        log.close()

    def start(self) -> "Lab":
        self._spawn("coordinator", [program("labgrid-coordinator"), "-l", self.address])
        self._until(lambda: self.client("places", check=False).returncode == 0,
                    "the coordinator to answer", "coordinator")
        return self

    def export(self, name: str, groups: dict[str, dict]) -> None:
        """Start an exporter called `name` publishing `groups` (labgrid's exporter YAML:
        group -> resource class -> parameters) and wait until the coordinator lists them."""
        config = self.home / f"{name}.yaml"
        config.write_text(yaml.safe_dump(groups))
        self._spawn(name, [program("labgrid-exporter"), "-c", self.address, "-n", name,
                           "--hostname", "127.0.0.1", str(config)])
        wanted = {f"{name}/{group}/{cls}" for group, resources in groups.items()
                  for cls in resources}
        self._until(lambda: wanted <= set(self.client("resources").stdout.split()),
                    f"exporter {name} to publish its resources", name)

    def add_place(self, name: str, *matches: str, tags: dict[str, str]) -> None:
        self.client("-p", name, "create")
        for match in matches:
            self.client("-p", name, "add-match", match)
        self.client("-p", name, "set-tags", *(f"{k}={v}" for k, v in tags.items()))

    def client(self, *args: str, user: str | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
        """labgrid-client against this lab, as `user` (LG_USERNAME) when given."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
        env["LG_COORDINATOR"] = self.address
        if user is not None:
            env["LG_USERNAME"] = user
        result = subprocess.run([program("labgrid-client"), *args], env=env,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)} failed: {result.stderr}")
        return result

    def holder(self, place: str) -> str | None:
        """Who has acquired `place` ("host/user"), or None when it is free."""
        for line in self.client("-p", place, "show").stdout.splitlines():
            if line.startswith("  acquired: "):
                value = line.split(": ", 1)[1]
                return None if value == "None" else value
        raise AssertionError(f"labgrid-client show printed no acquired line for {place}")

    def reservations(self) -> list[str]:
        """The tokens of every reservation the coordinator keeps."""
        return [line.split("'")[1] for line in self.client("reservations").stdout.splitlines()
                if line.startswith("Reservation '")]

    def log(self, name: str = "coordinator") -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def _until(self, ready, what: str, process: str, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.processes[process].poll() is not None:
                raise RuntimeError(f"{process} exited while waiting for {what}: "
                                   f"{self.log(process)[-800:]}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}: {self.log(process)[-800:]}")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):  # exporters, then coordinator
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        shutil.rmtree(self.home, ignore_errors=True)
