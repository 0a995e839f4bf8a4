"""Every timing option has an upper bound, stated in --help; a value outside it (inf, NaN,
1e308, 10**12, negative) is one sentence and exit 1 before anything is measured, from the
command line and from the Python API alike."""

from __future__ import annotations

import math
import re

import pytest

from edgecomp.cli import main
from edgecomp.errors import InputError
from edgecomp.pipeline.request import MeasureChoices

TIMING_FLAGS = ("--runs", "--seconds", "--warmup-runs", "--warmup-seconds", "--repeat",
                "--min-time")

OUT_OF_RANGE = [
    ("--seconds", "inf"), ("--seconds", "1e308"), ("--seconds", "nan"), ("--seconds", "-1"),
    ("--runs", str(10**12)), ("--runs", "0"), ("--runs", "-5"),
    ("--warmup-seconds", "inf"), ("--warmup-seconds", "nan"), ("--warmup-seconds", "-0.5"),
    ("--warmup-runs", str(10**12)), ("--warmup-runs", "-1"),
    ("--repeat", str(10**12)), ("--min-time", "inf"), ("--min-time", "1e308"),
]


@pytest.mark.parametrize("command", ["bench", "deploy"])
def test_every_timing_flag_states_its_upper_bound_in_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in TIMING_FLAGS:
        entry = re.search(re.escape(flag) + r" [A-Z_]+ (.*?)(?= --[a-z]|$)", text)
        assert entry, flag
        assert re.search(r"(to|at most) [0-9][0-9,]*", entry.group(1)), (flag, entry.group(1))


@pytest.mark.parametrize("flag, value", OUT_OF_RANGE)
def test_an_out_of_range_timing_value_is_one_sentence(flag, value, tmp_path, capsys):
    model = tmp_path / "never-read.onnx"  # refused before the model is looked at
    code = main(["bench", str(model), "--target", "local", flag, value])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"{flag} must be a " in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def test_deploy_refuses_an_endless_measurement_before_building_anything(tmp_path, capsys):
    code = main(["deploy", "--seconds", "inf", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "--seconds must be a number of seconds from 0 and at most 3600" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field, value", [
    ("runs", 10**12), ("runs", 0), ("seconds", math.inf), ("seconds", 1e308),
    ("seconds", math.nan), ("warmup_seconds", math.inf), ("warmup_runs", -1),
    ("repeat", 10**12), ("min_time", math.inf)])
def test_the_python_api_refuses_the_same_values(field, value):
    with pytest.raises(InputError, match="must be a"):
        MeasureChoices(**{field: value})


def test_values_at_the_bounds_are_accepted():
    choices = MeasureChoices(runs=1_000_000, seconds=3600.0, warmup_runs=10_000,
                             warmup_seconds=600.0, repeat=1000, min_time=86400.0)
    assert choices.rounds.count == 1000
