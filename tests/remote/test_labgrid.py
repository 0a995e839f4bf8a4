"""Boards shared through labgrid: a real labgrid-coordinator and labgrid-exporter
(tests/labgrid_lab.py) exporting the simulated board (tools/sim-board) as a NetworkService.

Every test checks the coordinator afterwards: the place is free again and no reservation
of ours is left, whatever happened to the run.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgecomp.cli import main
from edgecomp.errors import DeviceError, InputError
from edgecomp.remote.labgrid_client import CLIENT_S
from edgecomp.remote.connect import open_transport
from edgecomp.hardware.targets import load_target_file, parse_target
from edgecomp.pipeline import agent

pytestmark = pytest.mark.slow

QUICK = ["--runs", "20", "--seconds", "0.2", "--warmup-seconds", "0.05"]
COLLEAGUE = "colleague"  # another lab user (LG_USERNAME) holding places in some tests


@pytest.fixture(scope="module")
def lab(board):
    """A coordinator with three places: pi4-a and pi4-b (tags board=pi4) both reach the
    simulated board over SSH; no-ssh (board=relay) has only a power port."""
    from tests.labgrid_lab import Lab, program

    if program("labgrid-coordinator") is None:
        pytest.skip("labgrid is not installed (pip install 'edgecomp[labgrid]'; the test "
                    "extra includes it)")
    sim = load_target_file(Path(board.info["target_file"]))
    def service() -> dict:
        return {"NetworkService": {"address": sim.host, "username": sim.user, "port": sim.port}}

    lab = Lab().start()
    try:
        lab.export("sim-lab", {"pi4-a": service(), "pi4-b": service(),
                               "relay": {"NetworkPowerPort": {"model": "gude",
                                                              "host": "127.0.0.1",
                                                              "index": "1"}}})
        lab.add_place("pi4-a", "sim-lab/pi4-a/*", tags={"board": "pi4"})
        lab.add_place("pi4-b", "sim-lab/pi4-b/*", tags={"board": "pi4"})
        lab.add_place("no-ssh", "sim-lab/relay/*", tags={"board": "relay"})
    except BaseException:
        lab.stop()
        raise
    yield lab
    lab.stop()


@pytest.fixture
def lab_target(lab, board):
    """Write a labgrid target file into the test inventory: lab_target(NAME, **labgrid)."""
    sim = load_target_file(Path(board.info["target_file"]))
    written = []

    def write(name: str, *, board_dir=None, **labgrid) -> str:
        labgrid.setdefault("coordinator", lab.address)
        lines = ["[target]", f'name = "{name}"', 'profile = "pi4"',
                 f'identity_file = "{sim.identity_file}"', f'python = "{sim.python}"',
                 f'workdir = "{board_dir or sim.workdir}"', "", "[target.labgrid]"]
        for key, value in labgrid.items():
            if isinstance(value, dict):
                value = "{ " + ", ".join(f'{k} = "{v}"' for k, v in value.items()) + " }"
            elif isinstance(value, str):
                value = f'"{value}"'
            lines.append(f"{key} = {value}")
        path = Path(os.environ["EDGECOMP_TARGETS"]) / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        written.append(path)
        return name

    yield write
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture
def colleague_holds(lab):
    """Acquire places as another lab user; they are released after the test."""
    held = []

    def hold(place: str) -> None:
        lab.client("-p", place, "acquire", user=COLLEAGUE)
        held.append(place)

    yield hold
    for place in held:
        lab.client("-p", place, "release", user=COLLEAGUE, check=False)


def me() -> str:
    """This process's labgrid user name (labgrid-client reads LG_USERNAME, else the login)."""
    return os.environ.get("LG_USERNAME") or getpass.getuser()


def lab_host() -> str:
    return os.environ.get("LG_HOSTNAME") or socket.gethostname()


def events(lab, place: str, what: str) -> int:
    """How often the coordinator logged `what` ("acquired by HOST/USER", "released")."""
    return lab.log().count(f"{place}: place {what}")


def assert_given_back(lab, *places: str) -> None:
    for place in places:
        assert lab.holder(place) is None, f"{place} is still acquired"
    assert lab.reservations() == [], lab.client("reservations").stdout


def test_bench_through_a_place_records_it_and_gives_it_back(lab, lab_target,
                                                            deployed_artifact, tmp_path):
    lab_target("lab-pi4", place="pi4-a")
    mine = f"acquired by {lab_host()}/{me()}"
    acquired, released = events(lab, "pi4-a", mine), events(lab, "pi4-a", "released")
    out = tmp_path / "results.json"
    code = main(["bench", str(deployed_artifact), "--target", "lab-pi4", *QUICK,
                 "--json", str(out)])
    assert code == 0
    (result,) = json.loads(out.read_text())
    assert result["error"] is None and result["latency_ms"]["count"] >= 20
    assert result["target"] == "lab-pi4" and result["transport"] == "ssh"
    device = result["device"]
    assert device["target"]["place"] == "pi4-a" and device["target"]["host"] == "127.0.0.1"
    # The coordinator saw this run acquire the place once and release it again.
    assert events(lab, "pi4-a", mine) == acquired + 1
    assert events(lab, "pi4-a", "released") == released + 1
    assert_given_back(lab, "pi4-a")


def test_reserving_by_tags_takes_a_free_place_that_has_them(lab, lab_target, colleague_holds,
                                                           deployed_artifact, tmp_path):
    colleague_holds("pi4-a")
    lab_target("lab-any-pi4", tags={"board": "pi4"}, timeout=30)
    out = tmp_path / "results.json"
    assert main(["bench", str(deployed_artifact), "--target", "lab-any-pi4", *QUICK,
                 "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["error"] is None and result["device"]["target"]["place"] == "pi4-b"
    assert lab.holder("pi4-a").endswith("/" + COLLEAGUE)  # never taken from its holder
    assert lab.holder("pi4-b") is None
    assert lab.reservations() == []


def test_a_place_held_by_someone_else_makes_edgecomp_wait_then_fail(lab, lab_target,
                                                                    colleague_holds, capsys,
                                                                    deployed_artifact):
    colleague_holds("pi4-a")
    lab_target("lab-busy", place="pi4-a", timeout=3)
    start = time.monotonic()
    code = main(["bench", str(deployed_artifact), "--target", "lab-busy", *QUICK])
    waited = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 1 and 3 <= waited < 30
    sentence = " ".join(err.split())
    assert "place pi4-a" in sentence and "did not become free within 3 s" in sentence
    assert f"pi4-a is acquired by {lab_host()}/{COLLEAGUE}" in sentence
    assert sentence.count(". ") == 0 and sentence.endswith(".")  # one sentence
    assert lab.holder("pi4-a").endswith("/" + COLLEAGUE)
    assert lab.reservations() == []  # our reservation was cancelled


def test_a_place_freed_while_waiting_is_taken(lab, lab_target, colleague_holds):
    colleague_holds("pi4-a")
    lab_target("lab-patient", place="pi4-a", timeout=60)
    # The colleague finishes 3 s after edgecomp started waiting.
    finish = threading.Timer(3.0, lambda: lab.client("-p", "pi4-a", "release", user=COLLEAGUE))
    start = time.monotonic()
    finish.start()
    try:
        with open_transport("lab-patient") as transport:
            waited = time.monotonic() - start
            assert transport.place == "pi4-a"
            assert lab.holder("pi4-a") == f"{lab_host()}/{me()}"
            assert agent.info(transport).device.cores >= 1
    finally:
        finish.cancel()
        finish.join()
    assert 3 <= waited < 60
    assert_given_back(lab, "pi4-a")


def test_coordinator_down_is_one_sentence(lab, lab_target):
    from tests.labgrid_lab import free_port

    lab_target("lab-nowhere", place="pi4-a", coordinator=f"127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(DeviceError) as err:
        open_transport("lab-nowhere")
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert message.startswith("lab-nowhere: the labgrid coordinator at 127.0.0.1:")
    assert "cannot be reached" in message and "\n" not in message
    assert_given_back(lab, "pi4-a")


def test_unknown_place_or_tags_fail_before_reserving(lab, lab_target):
    lab_target("lab-typo", place="pi4-z")
    with pytest.raises(InputError, match="has no place named 'pi4-z' \\(its places: no-ssh, "
                                         "pi4-a, pi4-b\\)"):
        open_transport("lab-typo")
    lab_target("lab-pi9", tags={"board": "pi9"})
    with pytest.raises(InputError, match="has the tags board=pi9"):
        open_transport("lab-pi9")
    assert lab.reservations() == []


def test_a_place_without_a_network_service_is_released(lab, lab_target):
    lab_target("lab-relay", place="no-ssh")
    with pytest.raises(DeviceError, match="labgrid place no-ssh has no NetworkService "
                                          "resource \\(its resources: NetworkPowerPort\\)"):
        open_transport("lab-relay")
    assert events(lab, "no-ssh", "acquired by") == 1  # it was held, then given back
    assert_given_back(lab, "no-ssh")


def test_a_board_whose_sshd_stopped_releases_the_place(lab, lab_target, board_factory,
                                                       deployed_artifact, capsys):
    gone = board_factory("sim-gone")
    sim = load_target_file(Path(gone.info["target_file"]))
    lab.export("gone-lab", {"gone": {"NetworkService": {"address": sim.host,
                                                        "username": sim.user,
                                                        "port": sim.port}}})
    lab.add_place("gone", "gone-lab/gone/*", tags={"board": "gone"})
    gone.stop()  # its sshd is down; the lab still lists the place
    lab_target("lab-gone", place="gone")
    code = main(["bench", str(deployed_artifact), "--target", "lab-gone", *QUICK])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "cannot reach lab-gone at 127.0.0.1:" in err
    assert events(lab, "gone", "acquired by") == 1
    assert_given_back(lab, "gone")


def test_an_agent_failure_releases_the_place(lab, lab_target, tmp_path, capsys):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3" + os.urandom(100))
    lab_target("lab-broken", place="pi4-a")
    code = main(["bench", str(broken), "--target", "lab-broken", *QUICK])
    err = capsys.readouterr().err
    assert code == 1
    assert "not a readable tflite model" in err or "could not load" in err
    assert_given_back(lab, "pi4-a")


def _edgecomp(*args: str) -> subprocess.Popen:
    """edgecomp in its own process group, as a terminal runs it (Ctrl-C reaches the group),
    with Ctrl-C's default action: a test run started in the background of a non-interactive
    shell (`pytest &`, nohup) ignores SIGINT, and its children would inherit that."""
    return subprocess.Popen([sys.executable, "-c", AS_FROM_A_TERMINAL, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


# `python -m edgecomp.cli` with Python's own Ctrl-C handler put back (a handler, unlike an
# ignored signal, is not inherited by the programs edgecomp runs); no preexec_fn, which
# would fork this multi-threaded test process.
AS_FROM_A_TERMINAL = ("import runpy, signal; signal.signal(signal.SIGINT, "
                      "signal.default_int_handler); runpy.run_module('edgecomp.cli', "
                      "run_name='__main__', alter_sys=True)")


def _until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _interrupted(process: subprocess.Popen, lab) -> str:
    """Ctrl-C to edgecomp's process group; its stderr once it has ended. The give-back
    runs its two labgrid-client steps to their end, each within CLIENT_S, so that is what
    it may take (and more on a loaded machine); one that takes longer fails with what
    edgecomp and the coordinator said."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=2 * CLIENT_S + 30)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        err = process.communicate()[1]
        raise AssertionError(f"edgecomp did not end within {2 * CLIENT_S + 30:g} s of "
                             f"Ctrl-C; it said: {err[-1500:]}\ncoordinator: "
                             f"{lab.log()[-1500:]}") from None
    finally:
        if process.poll() is None:
            process.kill()


def test_ctrl_c_while_waiting_cancels_the_reservation(lab, lab_target, colleague_holds,
                                                      deployed_artifact):
    colleague_holds("pi4-a")
    lab_target("lab-wait", place="pi4-a", timeout=300)
    process = _edgecomp("bench", str(deployed_artifact), "--target", "lab-wait", *QUICK)
    try:
        _until(lambda: len(lab.reservations()) == 1, 60, "edgecomp's reservation")
        time.sleep(1.0)  # labgrid-client wait is polling now
    except BaseException:
        process.kill()
        raise
    err = _interrupted(process, lab)
    assert process.returncode == 130, err
    assert lab.reservations() == []
    assert lab.holder("pi4-a").endswith("/" + COLLEAGUE)


def test_ctrl_c_while_measuring_releases_the_place(lab, lab_target, board,
                                                   deployed_artifact):
    lab_target("lab-stopped", place="pi4-a")
    process = _edgecomp("bench", str(deployed_artifact), "--target", "lab-stopped",
                        "--runs", "100000", "--seconds", "60", "--warmup-seconds", "0")
    try:
        _until(lambda: lab.holder("pi4-a") is not None, 90, "edgecomp to acquire pi4-a")
        runs = board.workdir / "runs"
        _until(lambda: runs.is_dir() and any(runs.iterdir()), 60, "the run on the board")
        time.sleep(2.0)  # measuring now
    except BaseException:
        process.kill()
        raise
    err = _interrupted(process, lab)
    assert process.returncode == 130, err
    assert_given_back(lab, "pi4-a")


def test_labgrid_target_schema():
    base = {"name": "lab", "profile": "pi4"}
    target = parse_target({"target": {**base, "labgrid": {"tags": {"board": "pi4"}}}},
                          source="lab.toml")
    assert target.host is None and target.labgrid.timeout == 600.0
    assert target.labgrid.coordinator is None and target.labgrid.describe() == \
        "a place tagged board=pi4"
    cases = [
        ({**base}, "lab.toml: target: needs host = ADDRESS, or a [target.labgrid] table"),
        ({**base, "labgrid": {}}, "target.labgrid: give either place = NAME or tags"),
        ({**base, "labgrid": {"place": "a", "tags": {"board": "pi4"}}}, "not both"),
        ({**base, "host": "10.0.0.5", "labgrid": {"place": "a"}},
         "target.host: a labgrid board's address and user come from its place's "
         "NetworkService"),
        ({**base, "user": "me", "port": 2222, "labgrid": {"place": "a"}},
         "target.port, target.user: a labgrid board's"),
        ({**base, "labgrid": {"tags": {"Board": "pi4"}}}, "target.labgrid.tags: 'Board' is "
                                                          "not a labgrid tag name"),
        ({**base, "labgrid": {"tags": {"board": "pi 4"}}}, "target.labgrid.tags: board = "
                                                           "'pi 4'"),
        ({**base, "labgrid": {"place": "a", "coordinator": "-x evil"}},
         "target.labgrid.coordinator: '-x evil' is not a coordinator address"),
        ({**base, "labgrid": {"place": "a; rm -rf ~"}}, "target.labgrid.place: "),
        ({**base, "labgrid": {"place": "a", "timeout": 0}}, "target.labgrid.timeout: "),
        ({**base, "labgrid": {"place": "a", "pool": "x"}},
         "target.labgrid.pool: unknown key; expected one of place, tags, coordinator"),
    ]
    for table, message in cases:
        with pytest.raises(InputError) as err:
            parse_target({"target": table}, source="lab.toml")
        assert message in str(err.value)


def test_an_unknown_host_key_gives_the_line_that_trusts_it(lab, lab_target, board):
    from edgecomp.hardware.targets import inventory_known_hosts

    known = inventory_known_hosts()
    saved = known.read_text()
    board_line = board.info["known_hosts_line"]
    lab_target("lab-new-key", place="pi4-a")
    try:
        known.write_text("".join(line + "\n" for line in saved.splitlines()
                                 if line.strip() != board_line))
        with pytest.raises(DeviceError) as err:
            open_transport("lab-new-key")
        assert_given_back(lab, "pi4-a")
        message = str(err.value)
        assert "the host key of lab-new-key ([127.0.0.1]:" in message
        line = message.split(f"add this line to {known}: ", 1)[1].rstrip(".")
        assert line == board_line  # the same line sim-board wrote when it trusted its server
        with open(known, "a") as handle:
            handle.write(line + "\n")
        with open_transport("lab-new-key") as transport:
            assert agent.info(transport).device.cores >= 1
    finally:
        known.write_text(saved)
    assert_given_back(lab, "pi4-a")
