"""The stability figure of a timing, on synthetic samples and board states."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgecomp.errors import InputError
from edgecomp.pipeline.rounds import ROUND_SECONDS, rounds_for
from edgecomp.results.gate_latency import instability
from edgecomp.results.verdicts import GateConfig
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import (Stability, judged, measured, sample_reasons,
                                        interleaved_text, spread_text, warning, above)
from tests.results.records import record as stored_record

RNG = np.random.default_rng(0)


def make_record(**changes) -> ResultRecord:
    return dataclasses.replace(stored_record(), **changes)


STEADY = list(1.0 + RNG.normal(0, 0.01, 400))  # a quiet board: ±1 % around 1 ms


def device(*, load=0.2, cores=4, throttled=False):
    state = {"load_avg": [load, load, load] if load is not None else None,
             "online_cores": cores, "cores": cores}
    return {"device_before": state, "device_after": state, "throttled_during": throttled}


def test_a_quiet_run_is_stable_and_warns_nothing():
    figure = measured(STEADY, device())
    assert figure.stable and figure.reasons == []
    assert figure.samples == 400 and figure.timed_s == pytest.approx(0.4, rel=0.05)
    assert 1.0 <= figure.spread < 1.05 and figure.drift < 0.05
    assert figure.load_per_core == pytest.approx(0.05)
    assert warning(figure, artifact="m.tflite", target="pi") is None
    assert spread_text(figure) == f"{figure.spread:.2f}"


def test_a_heavy_tail_is_unstable_and_says_why_and_what_to_do():
    samples = np.array(STEADY)
    samples[RNG.random(len(samples)) < 0.2] *= 2.4  # a fifth of the runs 2.4x slower
    figure = measured(samples, device())
    assert not figure.stable and figure.spread > 2
    assert figure.reasons[0].startswith("p90 is 2.")
    line = warning(figure, artifact="m.tflite", target="pi")
    assert line.startswith("timing of m.tflite on pi is unstable: p90 is 2.")
    assert "quieter board" in line and "--repeat" in line and "--min-time" in line
    assert "\n" not in line
    assert spread_text(figure).endswith("!")


def test_a_value_at_its_limit_is_within_it_and_one_beyond_reads_beyond():
    """10.04 % over a 10 % limit reads 10.04 %, not "10 % (limit 10 %)"; 10 % is within."""
    assert above(0.1004, 0.10) == "10.04%, above the 10% limit"
    assert above(0.25, 0.10) == "25%, above the 10% limit"
    assert above(1.5004, 1.5, unit="x") == "1.5004x, above the 1.5x limit"
    tied = np.tile([0.9, 1.0, 1.0, 1.0, 1.1], 80)  # p90 of 1.1 ms at a p50 of 1.0 ms
    assert sample_reasons(tied, max_tail_ratio=1.1) == []  # equal to the limit: within
    assert sample_reasons(tied, max_tail_ratio=1.09) == [
        "p90 is 1.10x p50, above the 1.09x limit"]


def test_a_burst_shows_as_drift():
    samples = list(STEADY[:200]) + [1.3 * v for v in STEADY[200:]]  # second half 30 % slower
    figure = measured(samples, device())
    assert figure.drift > 0.25
    assert any(r.startswith("the medians of its tenths differ by") for r in figure.reasons)


def test_a_loaded_board_is_unstable_relative_to_its_cores():
    assert measured(STEADY, device(load=3.0, cores=4)).stable  # busy, not over its cores
    figure = measured(STEADY, device(load=6.5, cores=2))
    assert figure.reasons == ["load 6.50 on 2 cores"]
    assert "load 6.50 on 2 cores" in warning(figure, artifact="a", target="b")
    assert measured(STEADY, device(load=None)).load is None  # a board that cannot tell


def test_a_throttled_board_is_unstable():
    figure = measured(STEADY, device(throttled=True))
    assert figure.reasons == ["the board throttled"]
    assert measured(STEADY, device(throttled=None)).stable  # unknown is not throttled


def test_too_few_samples():
    assert measured(STEADY[:5], device()).reasons == ["5 samples, fewer than 20"]


def _with_rounds(ratios, *, base="fp32.tflite"):
    return judged(dataclasses.replace(measured(STEADY, device()), rounds=len(ratios),
                                      round_p50s=[1.0] * len(ratios), ratio_to=base,
                                      ratios=ratios), STEADY)


def test_ratio_rounds_that_agree_give_one_number():
    figure = _with_rounds([0.330, 0.325, 0.334])
    assert figure.stable
    assert interleaved_text(1 / 0.330, figure) == "3.03x"


def test_ratio_rounds_that_disagree_are_shown_as_their_range():
    figure = _with_rounds([0.21, 0.32, 0.25])
    assert not figure.stable
    assert figure.reasons == ["its speedup over fp32.tflite went from 3.12x to 4.76x over 3 "
                              "rounds, apart by 52%, above the 10% limit"]
    # The median of the rounds, never alone: the range beside it.
    assert interleaved_text(1 / 0.25, figure) == "4.00x (3.12-4.76x)"


def test_a_lone_artifact_in_rounds_is_judged_by_its_round_p50s():
    base = measured(STEADY, device())
    steady = judged(dataclasses.replace(base, rounds=3, round_p50s=[1.0, 1.02, 0.99]), STEADY)
    moved = judged(dataclasses.replace(base, rounds=3, round_p50s=[1.0, 1.3, 1.0]), STEADY)
    assert steady.stable
    assert moved.reasons == ["its p50 went from 1 ms to 1.3 ms over 3 rounds, apart by 30%, "
                             "above the 10% limit"]


def test_a_measurement_out_of_line_with_its_rounds_is_unstable():
    """Each round is a process of its own: a measurement 30 % slower than all three of its
    rounds recorded conditions of its own, not the artifact's."""
    base = measured([1.3 * v for v in STEADY], device())
    assert base.stable  # nothing within the measurement shows it
    off = judged(dataclasses.replace(base, rounds=3, round_p50s=[1.0, 1.01, 0.99]),
                 [1.3 * v for v in STEADY])
    assert len(off.reasons) == 1 and off.reasons[0].startswith("its measurement's p50, 1.3 ms")
    assert ("+30% off the median of its 3 rounds' (1 ms), beyond the 10% limit"
            in off.reasons[0])
    near = judged(dataclasses.replace(base, rounds=3, round_p50s=[1.25, 1.3, 1.2]),
                  [1.3 * v for v in STEADY])
    one = judged(dataclasses.replace(base, rounds=1, round_p50s=[1.0]),
                 [1.3 * v for v in STEADY])
    assert near.stable and one.stable  # one round cannot say which of two is out of line


def test_the_gate_judges_with_the_same_figure():
    """gate's `instability` is the figure's sample reasons with gate.toml's limits."""
    limits = GateConfig().stability
    tail = np.array(STEADY)
    tail[RNG.random(len(tail)) < 0.2] *= 5
    for samples in (STEADY, tail, STEADY[:5]):
        record = make_record(samples_ms=list(samples))
        reasons = sample_reasons(samples)
        assert instability(record, limits) == (reasons[0] if reasons else None)
    strict = dataclasses.replace(limits, max_tail_ratio=1.01)
    assert instability(make_record(samples_ms=STEADY), strict).startswith("p90 is")


def test_records_keep_the_figure_and_old_records_still_read():
    figure = _with_rounds([0.21, 0.32, 0.25])
    record = make_record(samples_ms=STEADY, stability=figure, p50_ratio=0.25)
    again = ResultRecord.from_json(record.to_json())
    assert again.stability == figure and not again.stability.stable
    old = record.to_json()
    del old["stability"]  # written before the figure existed
    assert ResultRecord.from_json(old).stability is None
    newer = record.to_json()
    newer["stability"]["from_the_future"] = 1  # a later edgecomp's extra key
    assert ResultRecord.from_json(newer).stability == figure
    assert spread_text(None) == "-" and interleaved_text(None, None) == "-"


@pytest.mark.parametrize("repeat, min_time", [
    (0, None), (-2, None), (1001, None), (True, None), (None, 0.0), (None, -1.0),
    (None, float("nan")), (None, float("inf")), (None, 1e9)])
def test_bad_repeat_or_min_time_is_refused_with_one_sentence(repeat, min_time):
    with pytest.raises(InputError) as caught:
        rounds_for(repeat, min_time)
    message = str(caught.value)
    assert message.startswith("--repeat" if repeat is not None else "--min-time")
    assert message.endswith(".") and "\n" not in message


def test_repeat_and_min_time_set_the_rounds():
    assert rounds_for(None, None) == type(rounds_for(None, None))()  # the defaults
    assert not rounds_for(None, None).asked
    rounds = rounds_for(4, 10.0)
    assert (rounds.count, rounds.seconds, rounds.repeat, rounds.min_time) == (4, 2.5, 4, 10.0)
    assert rounds_for(5, None).seconds == ROUND_SECONDS
    assert rounds_for(None, 0.1).seconds == ROUND_SECONDS  # never shorter than the default
    assert rounds_for(1, None).asked


def test_stability_json_is_plain():
    figure = Stability(samples=1, timed_s=0.1, spread=None, drift=None, load=None, cores=None,
                       throttled=None)
    assert Stability.from_json(figure.to_json()) == figure


def test_advice_stays_within_what_a_person_would_run():
    """Twice a 400-second timing is no advice; nor is more time for a busy board."""
    tail = np.array(STEADY)
    tail[RNG.random(len(tail)) < 0.2] *= 2.4
    long = dataclasses.replace(measured(tail, device()), rounds=3, rounds_timed_s=399.5)
    line = warning(long, artifact="a", target="b")
    assert "--min-time" not in line and "timed for 400 s already" in line
    short = warning(measured(tail, device()), artifact="a", target="b")
    repeat, seconds = (int(short.split(flag)[1].split()[0].rstrip(":"))
                       for flag in ("--repeat ", "--min-time "))
    assert repeat <= 10 and 5 <= seconds <= 60
    busy = warning(measured(STEADY, device(load=6.5, cores=2)), artifact="a", target="b")
    assert "--repeat" not in busy and "stop what else runs on it" in busy
