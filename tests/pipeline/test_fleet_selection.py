"""Fleets without boards: choosing the boards, building once per plan, side-by-side rows."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from edgecomp.errors import InputError
from edgecomp.pipeline.fleet import concurrently, select_targets
from edgecomp.results.compare import across_boards
from edgecomp.results.record import Latency
from tests.results.records import record


@pytest.fixture()
def inventory(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_TARGETS", str(tmp_path))
    boards = {"pi-a": ("pi4", ["lab", "pis"]), "pi-b": ("pi4", ["pis"]),
              "orin": ("jetson-orin-nano", ["lab"]), "pi5": ("pi5", [])}
    for name, (profile, groups) in boards.items():
        (tmp_path / f"{name}.toml").write_text(
            f'[target]\nname = "{name}"\nhost = "10.0.0.1"\nprofile = "{profile}"\n'
            f"groups = {groups!r}\n".replace("'", '"'))
    return tmp_path


def test_boards_are_chosen_by_name_profile_group_or_all(inventory):
    assert select_targets(None, None) == ["local"]
    assert select_targets(["pi5", "pi-a", "pi5"], None) == ["pi5", "pi-a"]
    assert select_targets(None, "profile=pi4") == ["pi-a", "pi-b"]
    assert select_targets(None, "group=lab") == ["orin", "pi-a"]
    assert select_targets(["local"], "group=pis") == ["local", "pi-a", "pi-b"]
    assert select_targets(None, "all") == ["orin", "pi-a", "pi-b", "pi5"]
    assert select_targets(None, "pi5,orin") == ["pi5", "orin"]


@pytest.mark.parametrize("selector, words", [
    ("profile=rpi9", "no target in the inventory matches"),
    ("group=nowhere", "no target in the inventory matches"),
    ("arch=arm64", "give profile=NAME, group=NAME, all, or NAME,NAME"),
    ("", "--targets needs a selector"),
    (" , ", "--targets needs a selector"),
])
def test_a_selector_that_picks_nothing_is_one_sentence(inventory, selector, words):
    with pytest.raises(InputError, match=words):
        select_targets(None, selector)


def test_calls_run_at_the_same_time_and_all_finish_before_an_error_is_raised():
    barrier = threading.Barrier(3, timeout=10)  # passes only if all three run at once
    finished = []

    def waits(name, fail=False):
        barrier.wait()
        finished.append(name)
        if fail:
            raise RuntimeError(name)
        return name

    assert concurrently([lambda n=n: waits(n) for n in "abc"]) == ["a", "b", "c"]
    barrier.reset()
    with pytest.raises(RuntimeError, match="b"):
        concurrently([lambda: waits("x"), lambda: waits("b", fail=True), lambda: waits("y")])
    assert set(finished[3:]) == {"x", "b", "y"}


def _on(target, p50, *, sha="sha", emulated=False, error=None, precision="fp32"):
    base = record("demo", error=error)
    return dataclasses.replace(
        base, target=target, precision=precision, artifact_sha256=sha, emulated=emulated,
        latency_ms=None if error else Latency(p50, p50, p50, p50, 0.0, 50))


def test_the_same_artifact_on_several_boards_is_one_row():
    records = [_on("pi-a", 2.0), _on("pi-b", 3.0), _on("arm", 40.0, emulated=True),
               _on("pi-a", 1.0, precision="int8", sha="q"),
               _on("pi-b", 0.0, precision="int8", sha="q2", error="link lost"),
               _on("pi-a", 9.0, precision="fp16", sha="h")]  # on one board only
    targets, rows = across_boards(records)
    assert targets == ["arm", "pi-a", "pi-b"]
    assert [(r.precision, sorted(t for t, v in r.on.items() if v)) for r in rows] == [
        ("fp32", ["arm", "pi-a", "pi-b"]), ("int8", ["pi-a", "pi-b"])]
    fp32, int8 = rows
    assert fp32.on["arm"].emulated and fp32.on["pi-b"].latency_ms.p50 == 3.0
    assert fp32.same_build and not int8.same_build
    assert int8.on["arm"] is None and not int8.on["pi-b"].ok


def test_one_board_has_nothing_to_put_side_by_side():
    assert across_boards([_on("pi-a", 2.0)]) == (["pi-a"], [])


def test_boards_share_a_build_only_when_their_plans_export_the_same_artifacts():
    from edgecomp.hardware.board import resolve_board
    from edgecomp.pipeline.fleet import Member
    from edgecomp.model.facts import model_facts
    from edgecomp.model.demo import DemoCNN
    from edgecomp.pipeline.apply import apply_plan, plan_stage
    from edgecomp.pipeline.deploy import _build_dir, _builds
    from edgecomp.pipeline.request import DeployRequest, ModelSpec
    from edgecomp.hardware.facts import BoardFacts
    from edgecomp.model.demo import demo_model

    source = demo_model()
    facts = model_facts(DemoCNN().eval(), (torch.zeros(1, 1, 8, 8),), name="demo-cnn")
    planned = []
    for name, board_facts_ in (("pi4", BoardFacts(online_cores=4)),
                               ("pi4", BoardFacts(online_cores=2)),  # threads differ only
                               ("x86-64", BoardFacts(online_cores=2))):
        board = resolve_board(name)
        plan = plan_stage(source, board, {}, board_facts_, model=facts)
        # Not the demo, which exports every format whatever the plan says.
        request = DeployRequest(target=name, model=ModelSpec(spec="pkg.mod:fn"))
        planned.append((Member(name=f"{name}-{len(planned)}", board=board), plan,
                        apply_plan(request, plan, board)))
    groups = _builds(planned, recipe=None)
    assert [[member.name for member, _, _ in group] for group in groups] == [
        ["pi4-0", "pi4-1"], ["x86-64-2"]]
    assert [_build_dir(group, i) for i, group in enumerate(groups)] == ["1-pi4", "2-x86-64"]
