"""Every registered exporter keeps the shared contract, for each precision it declares."""

from __future__ import annotations

import json

import pytest

from edgecomp.errors import EdgecompError, InputError
from edgecomp.export import (EXPORTERS, exporter_for_path, exporters, format_facts,
                             get_exporter, supported_precisions, unsupported_reason)
from edgecomp.export.base import Precision
from edgecomp.export.bundle import artifact_from_file
from edgecomp.hashing import file_sha256
from edgecomp.vocab import Format

pytestmark = pytest.mark.slow

DECLARED = [(fmt, precision) for fmt, exporter in sorted(exporters().items())
            for precision in sorted(exporter.precisions)]
UNSUPPORTED = [(fmt, precision) for fmt, exporter in sorted(exporters().items())
               for precision in Precision if precision not in exporter.precisions]


@pytest.fixture(scope="module")
def exported(tiny_request, tmp_path_factory):
    """One artifact per (format, precision), exported once for the module."""
    cache = {}

    def get(fmt: Format, precision: Precision):
        if (fmt, precision) not in cache:
            out = tmp_path_factory.mktemp(f"{fmt.value}-{precision.value}")
            cache[fmt, precision] = get_exporter(fmt).export(tiny_request(precision, out))
        return cache[fmt, precision]

    return get


def test_every_exporter_declares_its_facts():
    assert set(EXPORTERS) >= {Format.TFLITE, Format.ONNX}
    suffixes = [e.suffix for e in EXPORTERS.values()]
    assert len(set(suffixes)) == len(suffixes), "two formats claim one suffix"
    for fmt, facts in format_facts().items():
        assert facts.format == fmt and facts.suffix.startswith(".")
        assert Format.of_file(f"model{facts.suffix.upper()}") == fmt  # what the loader reads
        assert facts.precisions == supported_precisions(fmt) and facts.precisions
        assert not set(facts.declined) & facts.precisions
        json.dumps(facts.to_json())


@pytest.mark.parametrize("fmt,precision", DECLARED,
                         ids=[f"{f.value}-{p.value}" for f, p in DECLARED])
def test_each_declared_precision_exports(fmt, precision, exported):
    exporter = get_exporter(fmt)
    artifact = exported(fmt, precision)
    assert artifact.path.is_file() and artifact.path.suffix == exporter.suffix
    assert exporter_for_path(artifact.path) is exporter
    assert artifact.format == fmt.value and artifact.precision == precision
    manifest = json.loads(artifact.manifest_path.read_text())
    assert artifact.manifest_path == artifact.path.with_name(artifact.path.name + ".json")
    assert manifest["sha256"] == file_sha256(artifact.path)
    assert manifest["format"] == fmt.value and manifest["precision"] == precision.value
    details = exporter.inspect(artifact.path)
    assert details["inputs"] and details["outputs"] and details["ops"]
    assert details["inputs"][0]["shape"][-2:] == [8, 8]
    if precision == Precision.INT8:
        assert manifest["calibration"]["activation_symmetric"] is False
        assert details["integer_weight_share"] > 0.5
    # Only artifacts and manifests are left in the output folder.
    assert sorted(p.name for p in artifact.path.parent.iterdir()) == \
        sorted([artifact.path.name, artifact.manifest_path.name])
    assert artifact_from_file(artifact.path).manifest.to_json() == manifest
    assert artifact_from_file(artifact.path).manifest == artifact.manifest


@pytest.mark.parametrize("fmt,precision", UNSUPPORTED,
                         ids=[f"{f.value}-{p.value}" for f, p in UNSUPPORTED])
def test_an_unsupported_precision_is_one_sentence(fmt, precision, tiny_request, tmp_path):
    with pytest.raises(InputError) as caught:
        get_exporter(fmt).export(tiny_request(precision, tmp_path))
    message = str(caught.value)
    assert message.endswith(".") and precision.value in message and "\n" not in message
    assert message == unsupported_reason(fmt, precision)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", sorted(exporters()), ids=lambda f: f.value)
def test_a_failed_export_leaves_nothing_behind(fmt, tiny_request, tmp_path, monkeypatch):
    exporter = get_exporter(fmt)

    def unreadable(path):
        assert path.is_file()  # the file was written, under its temporary name
        raise EdgecompError("simulated failure after the file was written")

    monkeypatch.setattr(exporter, "inspect", unreadable)
    with pytest.raises(EdgecompError, match="simulated"):
        exporter.export(tiny_request(Precision.FP32, tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", sorted(exporters()), ids=lambda f: f.value)
def test_a_source_the_format_cannot_use_is_refused(fmt, tiny_request, tmp_path):
    exporter = get_exporter(fmt)
    if not exporter.needs_module:
        pytest.skip(f"{fmt.value} also exports from an ONNX file")
    with pytest.raises(InputError, match="PyTorch model"):
        exporter.export(tiny_request(Precision.FP32, tmp_path, module=None))
    assert list(tmp_path.iterdir()) == []


def test_unknown_formats_and_files_are_sentences(tmp_path):
    with pytest.raises(InputError, match="unknown format 'coreml'.*onnx, tflite"):
        get_exporter("coreml")
    with pytest.raises(InputError, match=r"unknown artifact type.*\.onnx and \.tflite"):
        exporter_for_path(tmp_path / "model.mlmodel")


def test_every_exporter_declares_the_int8_options_a_search_may_try():
    from edgecomp.export import Int8Options
    from edgecomp.vocab import CalibrationMethod

    for fmt, exporter in exporters().items():
        options = exporter.int8_options
        assert isinstance(options, Int8Options) and options.calibrations
        assert set(options.calibrations) <= set(CalibrationMethod)
    assert exporters()[Format.ONNX].int8_options.float_layers
    assert not exporters()[Format.TFLITE].int8_options.float_layers
