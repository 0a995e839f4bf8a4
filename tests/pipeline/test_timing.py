"""An emulated board times each artifact with fewer runs unless the user set them, and
says so in one line naming the flags that choose."""

from __future__ import annotations

import logging

import pytest

from edgecomp.cli import build_parser
from edgecomp.commands.args import measure_choices
from edgecomp.hardware.board import Board
from edgecomp.pipeline.apply import apply_plan
from edgecomp.pipeline.request import DeployRequest, MeasureChoices
from edgecomp.pipeline.timing import DEFAULT, EMULATED, timing_for

QEMU = "qemu-user: aarch64 on x86_64"
EFFICIENTNET_S = 8.7  # one EfficientNet-Lite0 inference on the emulated arm64 board


def inferences(timing) -> int:
    """Inferences an artifact gets: the first, warm-up and timed runs, and each round's
    first inference, warm-up and runs (runs bound it where seconds are 0)."""
    rounds = timing.rounds
    return 1 + timing.warmup_runs + timing.runs + \
        rounds.count * (1 + rounds.warmup_runs + rounds.runs)


def test_an_emulated_board_left_to_the_defaults_takes_minutes_not_half_an_hour():
    timing = timing_for(MeasureChoices(), QEMU, board="sim-arm64")
    assert (timing.runs, timing.seconds, timing.rounds) == \
        (EMULATED.runs, EMULATED.seconds, EMULATED.rounds)
    assert inferences(timing) * EFFICIENTNET_S < 3 * 60
    assert inferences(DEFAULT) * EFFICIENTNET_S > 15 * 60  # what the usual numbers cost
    assert timing.note == (
        f"sim-arm64 runs on an emulated CPU ({QEMU}): each artifact gets 5 timed runs after "
        "1 warm-up run and 2 interleaved rounds of 3 instead of 50 after 5 and 3 rounds of "
        "20; set --runs, --seconds, --warmup-runs, --warmup-seconds, --repeat to choose.")


def test_numbers_the_user_set_are_kept_on_an_emulated_board():
    timing = timing_for(MeasureChoices(runs=20, seconds=0.5), QEMU, board="sim-arm64")
    assert (timing.runs, timing.seconds, timing.warmup_runs) == (20, 0.5, EMULATED.warmup_runs)
    assert "20 timed runs" in timing.note and "--runs" not in timing.note
    every = MeasureChoices(runs=50, seconds=1.0, warmup_runs=5, warmup_seconds=0.5, repeat=3)
    timing = timing_for(every, QEMU, board="sim-arm64")
    assert timing.note is None and (timing.runs, timing.rounds.count) == (50, 3)
    assert timing.rounds.runs == DEFAULT.rounds.runs


def test_real_hardware_keeps_the_usual_defaults_without_a_word():
    assert timing_for(MeasureChoices(), None, board="pi4") == DEFAULT


def test_apply_plan_times_an_emulated_board_with_fewer_runs_and_warns(caplog):
    request = DeployRequest(measure=MeasureChoices())
    with caplog.at_level(logging.WARNING, logger="edgecomp.pipeline.apply"):
        settings = apply_plan(request, None, Board(name="sim-arm64", target=None, profile=None),
                              emulated=QEMU)
    assert (settings.measure.runs, settings.measure.warmup_runs) == (5, 1)
    assert settings.rounds.runs == 3
    assert [r.getMessage() for r in caplog.records if "emulated CPU" in r.getMessage()] \
        == [timing_for(MeasureChoices(), QEMU, board="sim-arm64").note]
    caplog.clear()
    settings = apply_plan(request, None, Board(name="local", target=None, profile=None))
    assert settings.measure.runs == DEFAULT.runs and not caplog.records


@pytest.mark.parametrize("argv, runs", [([], None), (["--runs", "7"], 7)])
def test_the_cli_leaves_runs_open_unless_given(argv, runs):
    args = build_parser().parse_args(["deploy", *argv])
    assert measure_choices(args).runs == runs
