"""The board a deploy plans for: this machine's own facts, targets and bare profiles."""

from __future__ import annotations

import json
import os
import platform

import pytest

from edgecomp.hardware.board import resolve_board
from edgecomp.hardware.facts import local_board_facts
from edgecomp.cli import main
from edgecomp.errors import InputError


def test_local_board_facts_read_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma avx512f avx512_vnni\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        2048000 kB\n")
    facts = local_board_facts(cpuinfo, meminfo)
    assert facts.isa == {"avx2", "fma", "avx512", "avx512-vnni"}
    assert facts.ram_mb == 2000 and facts.online_cores == len(os.sched_getaffinity(0))


def test_resolve_board_kinds():
    assert resolve_board("pi4").profile.name == "pi4" and resolve_board("pi4").target is None
    with pytest.raises(InputError, match="neither a target nor a profile"):
        resolve_board("mars-rover")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the local profile is x86-64 here")
def test_plan_for_local_uses_this_machines_cores_and_isa(tmp_path):
    out = tmp_path / "plan.json"
    assert main(["plan", "--target", "local", "--format", "tflite", "--json", str(out)]) == 0
    plan = json.loads(out.read_text())
    decisions = plan["decisions"]
    assert decisions["format"]["value"] == "tflite" and decisions["format"]["overridden"]
    assert decisions["threads"]["value"] == len(os.sched_getaffinity(0))
    flags = open("/proc/cpuinfo").read()
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    assert ("VNNI" in decisions["precision"]["reason"]) == vnni
