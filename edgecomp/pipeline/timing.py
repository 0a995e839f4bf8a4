"""How long each artifact is timed on a board: what the user set, else the defaults, which
are shorter on an emulated board.

An emulated CPU (qemu-user running an arm64 board on x86_64) takes seconds per inference
of a mid-size model (8.7 s for EfficientNet-Lite0): the usual 50 timed runs after 5 warm-up
runs and 3 interleaved rounds of 20 are 128 inferences an artifact, 18 minutes there, for
latencies that are not a board's anyway. There, the numbers the user left open take
`EMULATED` (15 inferences, about two minutes) and one line says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.pipeline.request import MeasureChoices
from edgecomp.pipeline.rounds import Rounds


@dataclass(frozen=True)
class Timing:
    """The timing numbers of one board's measurements."""

    runs: int
    seconds: float
    warmup_runs: int
    warmup_seconds: float
    rounds: Rounds
    note: str | None = None  # a sentence when an emulated board's defaults apply


DEFAULT = Timing(runs=MeasureOptions.runs, seconds=MeasureOptions.seconds,
                 warmup_runs=MeasureOptions.warmup_runs,
                 warmup_seconds=MeasureOptions.warmup_seconds, rounds=Rounds())
EMULATED = Timing(runs=5, seconds=0.0, warmup_runs=1, warmup_seconds=0.0,
                  rounds=Rounds(count=2, seconds=0.0, runs=3, warmup_runs=0,
                                warmup_seconds=0.0))


def timing_for(choice: MeasureChoices, emulated: str | None, *, board: str) -> Timing:
    """The numbers `choice` sets, the others from `DEFAULT`, or from `EMULATED` where
    `emulated` says how the board's CPU is emulated (None: real hardware)."""
    base = EMULATED if emulated else DEFAULT
    rounds = choice.rounds if choice.rounds.asked else base.rounds
    timing = Timing(runs=_given(choice.runs, base.runs),
                    seconds=_given(choice.seconds, base.seconds),
                    warmup_runs=_given(choice.warmup_runs, base.warmup_runs),
                    warmup_seconds=_given(choice.warmup_seconds, base.warmup_seconds),
                    rounds=rounds)
    left_open = [flag for flag, value in (("--runs", choice.runs), ("--seconds", choice.seconds),
                                          ("--warmup-runs", choice.warmup_runs),
                                          ("--warmup-seconds", choice.warmup_seconds))
                 if value is None] + ([] if choice.rounds.asked else ["--repeat"])
    if not emulated or not left_open:
        return timing
    plural = "s" if timing.warmup_runs != 1 else ""
    said = f"{timing.runs} timed runs after {timing.warmup_runs} warm-up run{plural}"
    usual = f"{DEFAULT.runs} after {DEFAULT.warmup_runs}"
    if not choice.rounds.asked:
        said += f" and {rounds.count} interleaved rounds of {rounds.runs}"
        usual += f" and {DEFAULT.rounds.count} rounds of {DEFAULT.rounds.runs}"
    if choice.runs is None and choice.warmup_runs is None:
        said += f" instead of {usual}"  # the comparison holds only for counts left open
    return replace(timing, note=(
        f"{board} runs on an emulated CPU ({emulated}): each artifact gets {said}; set "
        f"{', '.join(left_open)} to choose."))


def _given(value, default):
    return default if value is None else value
