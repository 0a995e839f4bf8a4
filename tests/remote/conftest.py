"""A real OpenSSH server as the board: tools/sim-board, started once per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM_BOARD = ROOT / "tools" / "sim-board"


def sim_board(*args: str, state: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGECOMP_SIM_DIR": str(state)}
    return subprocess.run([sys.executable, str(SIM_BOARD), *args], env=env,
                          capture_output=True, text=True, timeout=600)


class Board:
    """A started simulated board: its name, state directory and sshd facts."""

    def __init__(self, name: str, state: Path):
        self.name = name
        self.state = state

    @property
    def info(self) -> dict:
        return json.loads((self.state / "board.json").read_text())

    @property
    def port(self) -> int:
        return self.info["port"]

    @property
    def workdir(self) -> Path:
        return self.state / "board-home" / "work"

    @property
    def sshd_pid(self) -> int:
        return int((self.state / "sshd.pid").read_text())

    def stop(self) -> None:
        sim_board("stop", state=self.state)


def start_board(name: str, state: Path, *extra: str) -> Board:
    result = sim_board("start", "--name", name, *extra, state=state)
    if result.returncode != 0:
        raise RuntimeError(f"sim-board start failed: {result.stderr}")
    return Board(name, state)


@pytest.fixture()
def board_factory(tmp_path):
    """Start extra boards for one test (e.g. one whose sshd the test kills)."""
    started = []

    def start(name: str, *extra: str) -> Board:
        started.append(start_board(name, tmp_path / name, *extra))
        return started[-1]

    yield start
    for extra in started:
        extra.stop()


@pytest.fixture(scope="session")
def board(tmp_path_factory):
    board = start_board("sim-pi4", tmp_path_factory.mktemp("sim-board"))
    yield board
    board.stop()


# What tools/sim-board --arch arm64 needs on this machine.
ARM64_TOOLS = ("debootstrap", "qemu-aarch64-static", "dpkg-deb")


@pytest.fixture(scope="session")
def arm64_board(tmp_path_factory):
    """An emulated arm64 board (tools/sim-board start --arch arm64): Debian's arm64
    python3.11 under qemu-user as a cortex-a72. Its rootfs and wheels are a cache shared
    between sessions: $EDGECOMP_SIM_CACHE, which tests/conftest.py sets (under
    $EDGECOMP_TEST_CACHE when set, else sim-board's own cache in the user's ~/.cache)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [tool for tool in ARM64_TOOLS if not shutil.which(tool, path=search)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages debootstrap and "
                    "qemu-user-static; .ci/run installs them)")
    board = start_board("sim-arm64", tmp_path_factory.mktemp("sim-arm64"), "--arch", "arm64")
    yield board
    board.stop()


@pytest.fixture(scope="session")
def deployed_artifact(tmp_path_factory):
    """A small real LiteRT artifact for measurements that do not need the whole demo."""
    import litert_torch
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 10)).eval()
    path = tmp_path_factory.mktemp("artifact") / "mlp.tflite"
    litert_torch.convert(module, (torch.zeros(1, 64),)).export(str(path))
    return path
