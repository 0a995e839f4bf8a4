"""What a board's agent reports beats its profile in the plan, each with its reason, and
is kept per target so that a plan made without a connection still follows the board."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timezone

import pytest
import torch

from edgecomp import paths
from edgecomp.agent.protocol import AgentInfo, DeviceState
from edgecomp.hardware.board import Board, board_facts, cached_info, remember_info
from edgecomp.hardware.facts import facts_from_info, profile_mismatches
from edgecomp.cli import main
from edgecomp.model.facts import model_facts
from edgecomp.hardware.facts import BoardFacts
from edgecomp.hardware.planner import make_plan
from edgecomp.hardware.targets import parse_target
from edgecomp.vocab import ActivationDtype, Format, Precision, RuntimeName

READ_AT = datetime(2025, 6, 1, 8, 30, tzinfo=timezone.utc)


def agent_info(*, arch="aarch64", cores=4, isa=("neon",), mem_mb=3796.0, emulated=None,
               runtimes=None) -> AgentInfo:
    """An agent's `info` as a Raspberry Pi 4 with LiteRT and onnxruntime would send it."""
    device = DeviceState(hostname="pi", kernel="6.6.51", machine=arch, cpu_model="Cortex-A72",
                         cores=cores, online_cores=cores, governor="ondemand",
                         cpu_freq_mhz=1800.0, temperatures_c={"cpu-thermal": 48.0},
                         throttled=0, mem_total_mb=mem_mb, mem_available_mb=mem_mb / 2,
                         disk_free_mb=9000.0, load_avg=(0.1, 0.1, 0.1), isa=tuple(isa),
                         emulated=emulated)
    return AgentInfo(agent_version="4", python="3.11.2", arch=arch, cpu_model="Cortex-A72",
                     online_cores=cores,
                     runtimes=runtimes or {"ai_edge_litert": "1.4.0", "tflite_runtime": None,
                                           "tensorflow": None, "onnxruntime": "1.20.1"},
                     execution_providers=("CPUExecutionProvider",), device=device, missing=())


@pytest.fixture()
def target(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "cache"))
    return parse_target({"target": {"name": "bench-pi", "host": "10.0.0.5", "profile": "pi4"}},
                        source="bench-pi.toml")


def facts(**changes) -> BoardFacts:
    return facts_from_info(agent_info(**changes), source="bench-pi's agent")


# -- the cache ---------------------------------------------------------------------------


def test_cache_round_trip_and_plan_without_a_connection(target, profiles):
    info = agent_info(cores=2, isa=("neon", "dotprod"))
    remember_info(target, info, read_at=READ_AT)
    assert paths.board_facts_file("bench-pi").is_file()
    assert cached_info(target) == (info, READ_AT)
    board = Board(name="bench-pi", target=target, profile=profiles["pi4"])
    kept = board_facts(board)  # no transport: the kept report
    assert kept.source == f"bench-pi's agent on {READ_AT.astimezone():%Y-%m-%d %H:%M}"
    assert (kept.online_cores, kept.isa, kept.ram_mb) == (2, {"neon", "dotprod"}, 3796)
    assert kept.runtimes["ai_edge_litert"] == "1.4.0" and kept.arch == "aarch64"
    assert not list(paths.board_facts_file("bench-pi").parent.glob(".*.tmp*"))


def test_a_connection_refreshes_the_kept_facts(target, profiles):
    remember_info(target, agent_info(cores=4), read_at=READ_AT)

    class Connected:
        def info(self):
            return agent_info(cores=3)

    board = Board(name="bench-pi", target=target, profile=profiles["pi4"])
    live = board_facts(board, Connected().info)
    assert live.online_cores == 3 and live.source == "the agent on bench-pi"
    info, read_at = cached_info(target)
    assert info.online_cores == 3 and read_at > READ_AT


def test_a_readdressed_or_renamed_board_does_not_inherit_facts(target, caplog):
    remember_info(target, agent_info(), read_at=READ_AT)
    with caplog.at_level(logging.WARNING, logger="edgecomp.hardware.board"):
        assert cached_info(replace(target, host="10.0.0.6")) is None
        assert cached_info(replace(target, port=2222)) is None
    assert "not bench-pi at pi@10.0.0.6:22" in caplog.text
    other = replace(target, name="other-pi")
    paths.board_facts_file("bench-pi").rename(paths.board_facts_file("other-pi"))
    assert cached_info(other) is None
    assert cached_info(target) is None  # nothing kept under its own name now: no log line


@pytest.mark.parametrize("content, logged", [
    ("{not json", "Expecting property name"),
    ('["a list"]', "not a board-facts file"),
    (None, "protocol version 3"),
    ("", "Expecting value"),
])
def test_a_corrupt_or_foreign_cache_is_ignored_with_a_log_line(target, profiles, cnn, caplog,
                                                               content, logged):
    path = paths.board_facts_file("bench-pi")
    remember_info(target, agent_info(cores=2), read_at=READ_AT)
    if content is None:  # written by an edgecomp that spoke protocol 3
        entry = json.loads(path.read_text())
        entry["info"]["protocol_version"] = 3
        content = json.dumps(entry)
    path.write_text(content)
    board = Board(name="bench-pi", target=target, profile=profiles["pi4"])
    with caplog.at_level(logging.WARNING, logger="edgecomp.hardware.board"):
        kept = board_facts(board)
    assert kept == BoardFacts()
    assert logged in caplog.text and str(path) in caplog.text
    assert make_plan(profiles["pi4"], cnn, board=kept).threads == 4  # the profile's cores


def test_plan_command_reads_the_kept_facts(target, tmp_path, monkeypatch, capsys):
    inventory = tmp_path / "targets"
    inventory.mkdir()
    (inventory / "bench-pi.toml").write_text(
        '[target]\nname = "bench-pi"\nhost = "10.0.0.5"\nprofile = "pi4"\n')
    monkeypatch.setenv("EDGECOMP_TARGETS", str(inventory))
    out = tmp_path / "plan.json"
    assert main(["plan", "--target", "bench-pi", "--json", str(out)]) == 0
    assert "none kept for bench-pi" in capsys.readouterr().out
    assert json.loads(out.read_text())["decisions"]["threads"]["value"] == 4
    remember_info(target, agent_info(cores=2, isa=("neon", "dotprod")), read_at=READ_AT)
    assert main(["plan", "--target", "bench-pi", "--json", str(out)]) == 0
    source = f"bench-pi's agent on {READ_AT.astimezone():%Y-%m-%d %H:%M}"
    assert f"board facts: as reported by {source}" in capsys.readouterr().out
    plan = json.loads(out.read_text())
    assert plan["board_facts"] == source
    assert plan["decisions"]["threads"]["value"] == 2
    assert f"{source} reports 2 online cores" in plan["decisions"]["threads"]["reason"]
    assert "dot-product" in plan["decisions"]["precision"]["reason"]
    paths.board_facts_file("bench-pi").write_text("\x00garbage")
    assert main(["plan", "--target", "bench-pi"]) == 0  # a log line, no traceback
    assert "none kept for bench-pi" in capsys.readouterr().out


# -- each fact beats the profile, with its reason ----------------------------------------


def test_reported_cores(profiles, cnn):
    pi4 = profiles["pi4"]
    two = make_plan(pi4, cnn, board=facts(cores=2))
    assert two.threads == 2
    assert "bench-pi's agent reports 2 online cores (the pi4 profile describes 4)" in \
        two.reasons["threads"]
    four = make_plan(pi4, cnn, board=facts(cores=4))
    assert four.threads == 4 and "bench-pi's agent reports all 4 online" in \
        four.reasons["threads"]
    assert "reports" not in make_plan(pi4, cnn).reasons["threads"]


def test_reported_dotprod_that_the_profile_lacks(profiles, cnn):
    pi4 = profiles["pi4"]
    assert "NEON without dot-product" in make_plan(pi4, cnn).reasons["precision"]
    plan = make_plan(pi4, cnn, board=facts(isa=("neon", "dotprod")))
    assert plan.precision == Precision.INT8
    assert "dot-product (SDOT)" in plan.reasons["precision"]
    assert "bench-pi's agent reports dotprod, which the pi4 profile does not list" in \
        plan.reasons["precision"]


def test_missing_features_that_the_profile_claims(profiles, cnn):
    pi5, phone = profiles["pi5"], profiles["android-arm64"]
    assert "dot-product" in make_plan(pi5, cnn).reasons["precision"]
    plan = make_plan(pi5, cnn, board=facts(isa=("neon", "fp16")))
    assert "NEON without dot-product" in plan.reasons["precision"]
    assert "bench-pi's agent reports no dotprod, which the pi5 profile lists" in \
        plan.reasons["precision"]
    on_cpu = {"delegate": "xnnpack"}
    assert "i8mm" in make_plan(phone, cnn, on_cpu).reasons["precision"]
    no_i8mm = make_plan(phone, cnn, on_cpu, board=facts(isa=("neon", "dotprod", "fp16"), cores=8))
    assert "i8mm" not in no_i8mm.reasons["precision"].split("(")[0]
    assert "reports no i8mm" in no_i8mm.reasons["precision"]
    # A feature a report cannot show stays the profile's word.
    assert "fp16-storage" in make_plan(profiles["pi4"], cnn, board=facts()).reasons["runtime"]


def test_x86_vnni_reported_or_not(profiles, cnn):
    x86 = profiles["x86-64"]
    board = facts(arch="x86_64", isa=("avx2", "fma", "avx512-vnni"), cores=4)
    vnni = make_plan(x86, cnn, board=board)
    assert vnni.reduce_range is False and "VNNI" in vnni.reasons["precision"]
    assert "reports avx512-vnni, which the x86-64 profile does not list" in \
        vnni.reasons["reduce_range"]
    plain = make_plan(x86, cnn, board=replace(board, isa=frozenset({"avx2", "fma"})))
    assert plain.reduce_range is True and "VNNI" not in plain.reasons["precision"]


def test_a_board_of_another_architecture(profiles, cnn):
    """An x86 machine labelled pi4: ISA-dependent decisions follow the machine."""
    board = facts(arch="x86_64", isa=("avx2", "fma"), cores=4)
    onnx = make_plan(profiles["pi4"], cnn, {"format": "onnx"}, board=board)
    assert onnx.activation_dtype == ActivationDtype.UINT8 and onnx.reduce_range is True
    assert "AVX2" in onnx.reasons["precision"]
    assert "reports avx2, which the pi4 profile does not list, and no neon, which it " \
           "lists" in onnx.reasons["precision"]
    assert any("reports the CPU architecture x86_64, but the pi4 profile describes aarch64" in w
               for w in onnx.warnings)
    # The profile's cores and ISA are another CPU's.
    assert "on the board's x86_64 CPU (avx2, fma)" in onnx.reasons["runtime"]
    arm = make_plan(profiles["pi4"], cnn, {"format": "onnx"}, board=facts())
    assert arm.activation_dtype == ActivationDtype.INT8 and not arm.warnings


def test_an_emulated_board_keeps_the_profiles_isa_and_says_timings_differ(profiles, cnn):
    board = facts(isa=("avx2", "fma", "avx512"), emulated="qemu-user: aarch64 on x86_64")
    plan = make_plan(profiles["pi4"], cnn, board=board)
    assert "NEON without dot-product" in plan.reasons["precision"]
    assert "bench-pi's agent reports" not in plan.reasons["precision"]
    assert any("emulated CPU (qemu-user: aarch64 on x86_64)" in w and "not comparable" in w
               for w in plan.warnings)
    assert not any("emulated" in w for w in make_plan(profiles["pi4"], cnn,
                                                      board=facts()).warnings)


def test_reported_ram_sets_the_memory_budget(profiles):
    class Wide(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4096),
                                            torch.nn.ReLU(), torch.nn.Linear(4096, 16384))

        def forward(self, x):
            return self.body(x)

    wide = model_facts(Wide(), torch.zeros(1, 1, 8, 8), name="wide")  # ~64 MB of int8
    zero = profiles["pi-zero-2w"]  # 512 MB, 35% for the model
    assert make_plan(zero, wide).memory_fit != "too-large"
    small = make_plan(zero, wide, board=facts(mem_mb=256.0))
    assert small.memory_fit == "too-large"
    assert "35% of 256 MB that bench-pi's agent reports; the pi-zero-2w profile says 512 MB" \
        in small.memory_reason
    assert any("does not fit" in w for w in small.warnings)


def test_a_runtime_the_board_lacks_is_not_chosen(profiles, cnn):
    x86 = profiles["x86-64"]  # prefers onnxruntime
    assert make_plan(x86, cnn).runtime == RuntimeName.ONNXRUNTIME
    no_ort = facts(arch="x86_64", isa=("avx2", "fma"),
                   runtimes={"ai_edge_litert": "1.4.0", "tflite_runtime": None,
                             "tensorflow": None, "onnxruntime": None})
    plan = make_plan(x86, cnn, board=no_ort)
    assert (plan.format, plan.runtime) == (Format.TFLITE, RuntimeName.AI_EDGE_LITERT)
    assert plan.reasons["runtime"].startswith(
        "the board has no onnxruntime installed; LiteRT 1.4.0 is (bench-pi's agent)")
    assert not any("installed" in w for w in plan.warnings)
    # The user's choice stands, with a warning; so does the only format the model has.
    forced = make_plan(x86, cnn, {"runtime": "onnxruntime"}, board=no_ort)
    assert forced.runtime == RuntimeName.ONNXRUNTIME
    assert any("has no onnxruntime installed" in w for w in forced.warnings)
    only = make_plan(x86, cnn, board=no_ort, formats=(Format.ONNX,))
    assert only.runtime == RuntimeName.ONNXRUNTIME
    assert any("has no onnxruntime installed" in w for w in only.warnings)
    # A board with both keeps the profile's preference; one that does not report a
    # runtime (TensorRT is not in the agent's list) keeps it too.
    assert make_plan(x86, cnn, board=facts(arch="x86_64")).runtime == RuntimeName.ONNXRUNTIME
    orin = make_plan(profiles["jetson-orin-nano"], cnn, board=facts(cores=6))
    assert orin.runtime == RuntimeName.TENSORRT


def test_profile_mismatches(profiles):
    pi4 = profiles["pi4"]
    assert profile_mismatches(pi4, facts()) == []
    assert profile_mismatches(pi4, facts(arch="x86_64", isa=("avx2", "fma"), cores=2)) == [
        "CPU x86_64, not aarch64", "2 usable cores, not 4", "no neon",
        "avx2, fma beyond the profile's ISA"]
    emulated = facts(isa=("avx2",), emulated="qemu-user: aarch64 on x86_64")
    assert profile_mismatches(pi4, emulated) == []
