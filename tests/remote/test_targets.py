"""Target files: validated once, with the file and field named on error; only the user's
inventory is loaded, never the examples."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgecomp.errors import InputError
from edgecomp.hardware.targets import get_target, load_target_file, load_targets, parse_target

GOOD = {"name": "pi", "host": "10.0.0.5", "profile": "pi4"}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "targets"


def test_examples_are_valid_and_show_every_field():
    examples = {path.stem: load_target_file(path) for path in EXAMPLES.glob("*.toml")}
    assert examples["pi4-example"].profile == "pi4" and examples["pi4-example"].port == 22
    assert examples["jetson-orin-example"].power_probe == "jetson-ina3221"


def test_only_the_inventory_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_TARGETS", str(tmp_path))
    assert load_targets() == {}
    (tmp_path / "mine.toml").write_text((EXAMPLES / "pi4-example.toml").read_text()
                                        .replace('name = "pi4-example"', 'name = "my-pi"'))
    (tmp_path / "known_hosts").write_text("")
    target = get_target("my-pi")
    assert set(load_targets()) == {"my-pi"} and target.source == str(tmp_path / "mine.toml")


@pytest.mark.parametrize("field, value, where, message", [
    ("host", "pi; rm -rf ~", "target.host", "characters"),
    ("workdir", "$(reboot)", "target.workdir", "characters"),
    ("python", "python3 && curl evil", "target.python", "characters"),
    ("identity_file", "~/.ssh/id rsa", "target.identity_file", "characters"),
    ("user", "-oProxyCommand=x", "target.user", "characters"),
    ("workdir", "/tmp/../etc", "target.workdir", "'..'"),
    ("port", 70000, "target.port", "less than or equal to 65535"),
    ("port", 0, "target.port", "greater than or equal to 1"),
    ("port", "22", "target.port", "must be an integer"),
    ("connect_timeout", True, "target.connect_timeout", "must be a number"),
    ("connect_timeout", 1e308, "target.connect_timeout", "less than or equal to 300"),
    ("command_timeout", float("inf"), "target.command_timeout", "finite number"),
    ("command_timeout", 1e308, "target.command_timeout", "less than or equal to 86400"),
    ("lock_timeout", float("nan"), "target.lock_timeout", "finite number"),
    ("lock_timeout", -1.0, "target.lock_timeout", "greater than 0"),
    ("runtime", "tflite", "target.runtime", "'tflite' is not one of auto, ai_edge_litert"),
    ("power_probe", "ina999", "target.power_probe", "or file:PATH"),
    ("power_probe", "file:/x;y", "target.power_probe", "'file:/x;y' is not one of"),
    ("env", {"lower": "x"}, "target.env", "UPPER_CASE"),
    ("env", {"OK": 1}, "target.env.OK", "must be a string"),
    ("colour", "red", "target.colour", "unknown key; expected one of name, host"),
])
def test_fields_that_would_break_a_shell_command_are_refused(field, value, where, message):
    with pytest.raises(InputError, match=message) as err:
        parse_target({"target": {**GOOD, field: value}}, source="boards/pi.toml")
    assert str(err.value).startswith(f"boards/pi.toml: {where}: ")


def test_accepted_values_keep_their_meaning():
    target = parse_target({"target": {**GOOD, "runtime": "onnxruntime", "port": 2222,
                                      "power_probe": "file:/sys/power/now",
                                      "connect_timeout": 5, "env": {"OMP_NUM_THREADS": "2"}}},
                          source="x.toml")
    assert (target.runtime, target.port, target.power_probe) == \
        ("onnxruntime", 2222, "file:/sys/power/now")
    assert target.connect_timeout == 5.0 and target.source == "x.toml"
    assert replace(target, port=22).port == 22  # still a frozen dataclass


def test_missing_field_is_named():
    with pytest.raises(InputError, match=r"^x\.toml: target\.profile: required, but missing"):
        parse_target({"target": {"name": "x", "host": "h"}}, source="x.toml")


def test_unknown_target_lists_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_TARGETS", str(tmp_path))
    (tmp_path / "pi.toml").write_text('[target]\nname = "pi"\nhost = "h"\nprofile = "pi4"\n')
    with pytest.raises(InputError, match=f"known targets: local, pi. Add a board with a TOML "
                                         f"file in {tmp_path}"):
        get_target("nope")


def test_two_files_declaring_one_name_are_refused_naming_both(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_TARGETS", str(tmp_path))
    for file, host in (("lab-pi.toml", "10.0.0.5"), ("old-pi.toml", "10.0.0.9")):
        (tmp_path / file).write_text(f'[target]\nname = "pi"\nhost = "{host}"\n'
                                     'profile = "pi4"\n')
    with pytest.raises(InputError) as err:
        get_target("pi")
    assert str(err.value) == (f"{tmp_path / 'lab-pi.toml'} and {tmp_path / 'old-pi.toml'} "
                              "both declare the target name 'pi'; give each board its own "
                              "name.")


def test_list_shows_a_labgrid_target_by_its_place(tmp_path, monkeypatch, capsys):
    from edgecomp.cli import main

    monkeypatch.setenv("EDGECOMP_TARGETS", str(tmp_path))
    (tmp_path / "pi.toml").write_text('[target]\nname = "pi"\nhost = "h"\nprofile = "pi4"\n'
                                      'groups = ["bench-lab"]\n')
    (tmp_path / "lab.toml").write_text('[target]\nname = "lab"\nprofile = "pi4"\n'
                                       '[target.labgrid]\ntags = { board = "pi4" }\n')
    assert main(["targets", "list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "labgrid a place tagged board=pi4" in out and "pi@h:22" in out
    assert "bench-lab" in out  # the groups `--targets group=NAME` matches
    assert "None" not in out


def test_check_keeps_the_boards_facts_for_the_plan(board, tmp_path, capsys):
    """`targets check` shows the board's ISA and emulation, warns that this machine is no
    Raspberry Pi, and keeps its facts; `plan` then follows them without a connection."""
    import json
    import os
    import platform

    from edgecomp import paths
    from edgecomp.cli import main

    kept = paths.board_facts_file(board.name)
    kept.unlink(missing_ok=True)  # another test's deploy may have kept them already
    assert main(["targets", "check", board.name]) == 0
    out = capsys.readouterr().out
    from edgecomp.agent.device import isa_features

    here = isa_features(open("/proc/cpuinfo").read())
    assert f"ISA      {', '.join(here) or 'none reported'}" in out
    assert "emulated no" in out
    if platform.machine() != "aarch64":
        warning, = [line for line in out.splitlines() if line.startswith("warning:")]
        assert f"{board.name} does not match its pi4 profile: CPU {platform.machine()}, " \
               "not aarch64" in warning
    assert kept.is_file()

    cores = len(os.sched_getaffinity(0))
    out_json = tmp_path / "plan.json"
    assert main(["plan", "--target", board.name, "--json", str(out_json)]) == 0
    shown = capsys.readouterr().out
    plan = json.loads(out_json.read_text())
    assert plan["board_facts"].startswith(f"{board.name}'s agent on ")
    assert f"board facts: as reported by {plan['board_facts']}" in shown
    threads = plan["decisions"]["threads"]
    assert threads["value"] == cores
    if cores != 4:
        assert f"{plan['board_facts']} reports {cores} online cores" in threads["reason"]
    else:
        assert f"{plan['board_facts']} reports all 4 online" in threads["reason"]
