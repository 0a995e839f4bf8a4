"""The artifact cache: the same export is copied from it, anything that changes the
artifact exports again, a damaged entry is rebuilt, and the folder stays bounded."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest
import torch
from torch import nn

from edgecomp.cli import main
from edgecomp.export.base import Artifact
from edgecomp.export.cache import ArtifactCache, model_identity
from edgecomp.hashing import file_sha256, module_sha256
from edgecomp.model.source import ModelSource
from tests.results.records import manifest

# Only LiteRT and ONNX int8 of the demo, calibrated on 64 digits: a few seconds each time.
EXPORT = ["export", "demo", "--format", "onnx", "--format", "tflite", "--precision", "int8",
          "--calib", "demo", "--calib-size", "64"]


def export(out, capsys, *extra) -> tuple[dict[str, str], str]:
    """Run `edgecomp export`; the artifacts' sha256 by file name, and what it printed on
    stderr."""
    capsys.readouterr()
    assert main([*EXPORT, "-o", str(out), *extra]) == 0
    err = capsys.readouterr().err
    files = sorted(p for p in out.iterdir() if p.suffix in (".onnx", ".tflite"))
    return {p.name: file_sha256(p) for p in files}, err


def entries(cache) -> list:
    return sorted(cache.glob("??/*"))


def test_the_same_export_is_copied_from_the_cache(artifact_cache, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="edgecomp")
    first, err = export(tmp_path / "a", capsys)
    assert "reusing" not in err
    assert len(entries(artifact_cache)) == 2
    assert [r for r in caplog.records if r.getMessage().startswith("exporting")]

    caplog.clear()
    started = time.perf_counter()
    second, err = export(tmp_path / "b", capsys)
    reused_s = time.perf_counter() - started
    assert second == first  # the same bytes, under the same names
    assert "reusing 2 artifact(s) built" in err and "for edgecomp export" in err
    assert "--rebuild to export again" in err
    assert not [r for r in caplog.records if r.getMessage().startswith("exporting")]
    for name in first:  # each manifest came along, and still describes its file
        manifest = json.loads((tmp_path / "b" / f"{name}.json").read_text())
        assert manifest["sha256"] == first[name] and manifest["calibration"]["samples"] == 64
    assert reused_s < 60


@pytest.mark.parametrize("change", [["--calibration-method", "percentile"],
                                    ["--calib-size", "48"], ["--per-tensor"]],
                         ids=["calibration-method", "calibration-data", "scheme"])
def test_a_changed_option_exports_again(artifact_cache, tmp_path, capsys, change):
    first, _ = export(tmp_path / "a", capsys)
    second, err = export(tmp_path / "b", capsys, *change)
    assert "reusing" not in err
    assert len(entries(artifact_cache)) == 4  # both kept: going back reuses the first
    assert second.keys() == first.keys()
    again, err = export(tmp_path / "c", capsys)
    assert again == first and "reusing 2 artifact(s)" in err


def test_rebuild_exports_again_and_replaces_the_entry(artifact_cache, tmp_path, capsys):
    export(tmp_path / "a", capsys)
    before = {p: json.loads((p / "entry.json").read_text())["built_for"]
              for p in entries(artifact_cache)}
    _, err = export(tmp_path / "b", capsys, "--rebuild")
    assert "reusing" not in err
    assert entries(artifact_cache) == sorted(before)  # the same keys, written again


def test_a_damaged_entry_is_said_and_rebuilt(artifact_cache, tmp_path, capsys):
    first, _ = export(tmp_path / "a", capsys)
    onnx_entry = next(p for p in entries(artifact_cache) if (p / "demo-cnn.int8.onnx").exists())
    (onnx_entry / "demo-cnn.int8.onnx").write_bytes(b"not a model")
    tflite_entry = next(p for p in entries(artifact_cache) if p != onnx_entry)
    (tflite_entry / "entry.json").unlink()  # as a half-deleted entry would be

    second, err = export(tmp_path / "b", capsys)
    assert second == first
    assert err.count("warning: ignoring the cached artifact") == 2
    assert "exporting it again" in err and "reusing" not in err
    # Rebuilt entries are whole again, and the next export reuses them.
    assert file_sha256(onnx_entry / "demo-cnn.int8.onnx") == first["demo-cnn.int8.onnx"]
    third, err = export(tmp_path / "c", capsys)
    assert third == first and "reusing 2 artifact(s)" in err


def test_off_keeps_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "cache"))
    export(tmp_path / "a", capsys)  # EDGECOMP_ARTIFACT_CACHE=off in every test session
    assert not (tmp_path / "cache" / "artifacts").exists()


def _artifact(folder, name: str, size: int) -> Artifact:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size))
    made = manifest(file=name, format="onnx", sha256=file_sha256(path), size_bytes=size)
    path.with_name(f"{name}.json").write_text(json.dumps(made.to_json()))
    return Artifact(path=path, manifest=made)


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_used(tmp_path):
    cache = ArtifactCache(tmp_path / "cache", built_for="test", max_bytes=250_000)
    keys = [f"{k:064x}" for k in (1, 2, 3)]
    cache.store(keys[0], _artifact(tmp_path / "out", "a.onnx", 100_000))
    cache.store(keys[1], _artifact(tmp_path / "out", "b.onnx", 100_000))
    old = time.time() - 60
    os.utime(cache._folder(keys[1]), (old, old))
    os.utime(cache._folder(keys[0]), (old + 1, old + 1))
    assert cache.load(keys[1], tmp_path / "got") is not None  # b used last
    cache.store(keys[2], _artifact(tmp_path / "out", "c.onnx", 100_000))
    assert cache.load(keys[0], tmp_path / "got") is None  # a went
    assert cache.load(keys[1], tmp_path / "got") is not None
    assert cache.load(keys[2], tmp_path / "got") is not None


class Net(nn.Module):
    def __init__(self, act: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.act = act

    def forward(self, x):
        return self.act(self.conv(x))


def test_model_identity_tells_models_with_the_same_weights_apart():
    torch.manual_seed(0)
    relu = Net(nn.ReLU())
    relu6 = Net(nn.ReLU6())
    relu6.load_state_dict(relu.state_dict())
    source = ModelSource(name="net", kind="factory", module=relu, inputs=(), sha256="0" * 64,
                         spec=f"{Net.__module__}:Net")
    assert module_sha256(relu) != module_sha256(relu6)
    assert module_sha256(relu) == module_sha256(relu)
    assert model_identity(source, relu) != model_identity(source, relu6)
    assert model_identity(source, relu)["factory_file"] == file_sha256(__file__)
