"""The Python API's requests accept and refuse exactly what the CLI's flags do, with the
same sentence: the CLI builds these requests, so there is one validation, two callers."""

from __future__ import annotations

import pytest

from edgecomp.cli import main
from edgecomp.errors import InputError
from edgecomp.pipeline.bench import bench
from edgecomp.pipeline.request import DataSpec, DeployRequest, ExportChoices
from edgecomp.vocab import CalibrationMethod, Format, IoDtype, Precision


def test_a_tag_the_cli_refuses_is_refused_by_the_api_in_the_same_sentence(tmp_path, capsys):
    tag = "<script>alert(1)</script>"
    with pytest.raises(InputError) as info:
        DeployRequest(tag=tag)
    assert main(["deploy", "--tag", tag, "-o", str(tmp_path / "out")]) == 1
    assert f"error: {info.value}" in " ".join(capsys.readouterr().err.split())
    assert str(info.value).startswith("--tag '<script>alert(1)</script>' is not a usable name")
    assert not (tmp_path / "out").exists()


def test_bench_refuses_a_bad_tag_before_it_reads_or_measures_anything(tmp_path):
    with pytest.raises(InputError, match="--tag 'a b' is not a usable name"):
        bench([tmp_path / "missing.onnx"], tag="a b")


def test_formats_and_precisions_given_as_text_become_the_vocabularies_words():
    choices = ExportChoices(formats=("onnx", Format.TFLITE, "onnx"), precisions="int8",
                            io_dtype="int8", calibration_method="entropy")
    assert choices.formats == (Format.ONNX, Format.TFLITE)
    assert choices.precisions == (Precision.INT8,)
    assert choices.io_dtype is IoDtype.INT8
    assert choices.calibration_method is CalibrationMethod.ENTROPY
    assert ExportChoices() == ExportChoices(formats=None, precisions=None)


@pytest.mark.parametrize("changes, sentence", [
    ({"formats": ("pdf",)}, "--format 'pdf' is not one of tflite, onnx."),
    ({"precisions": ("int3",)}, "--precision 'int3' is not one of fp32, fp16, int8, "
                                "dynamic-int8."),
    ({"io_dtype": "uint4"}, "--io-dtype 'uint4' is not one of float32, int8."),
    ({"calibration_method": "best"}, "--calibration-method 'best' is not one of minmax, "
                                     "entropy, percentile."),
])
def test_a_word_outside_a_vocabulary_is_refused_in_one_sentence(changes, sentence):
    with pytest.raises(InputError) as info:
        ExportChoices(**changes)
    assert str(info.value) == sentence


def test_a_calibration_size_the_cli_refuses_is_refused_by_the_api(capsys):
    with pytest.raises(InputError) as info:
        DataSpec(calib_size=0)
    assert main(["deploy", "--calib-size", "0"]) == 1
    assert f"error: {info.value}" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("changes, flags", [
    ({"min_cosine": 1.5}, ["--min-cosine", "1.5"]),
    ({"max_top1_drop": -1.0}, ["--max-top1-drop", "-1"]),
    ({"min_decision": 101.0}, ["--min-agreement", "101"]),
    ({"min_cosine": float("nan")}, ["--min-cosine", "nan"]),
])
def test_an_agreement_target_the_cli_refuses_is_refused_by_the_api(changes, flags, capsys):
    from edgecomp.quantize.target import AgreementTarget

    with pytest.raises(InputError) as info:
        AgreementTarget(**changes)
    assert main(["deploy", *flags]) == 1
    assert f"error: {info.value}" in " ".join(capsys.readouterr().err.split())
