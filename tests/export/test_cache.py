"""The artifact cache: the same export is copied from it, anything that changes the
artifact exports again, a damaged entry or another model's is rebuilt, the folder stays
bounded, and nothing in it that the cache did not make is ever removed."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from edgecomp.cli import main
from edgecomp.export.base import Artifact
from edgecomp.export.cache import ArtifactCache, model_identity
from edgecomp.export.cache_entry import Key
from edgecomp.hashing import file_sha256, module_sha256
from edgecomp.model.source import ModelSource
from tests.results.records import SRC, manifest

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


def _key(number: int) -> Key:
    """The key of an fp32 ONNX artifact of model `m` (what `manifest` describes)."""
    return Key.of({"n": number, "model": {"name": "m", "source_sha256": SRC},
                   "format": "onnx", "precision": "fp32", "technique": "none",
                   "search": None})


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_used(tmp_path):
    cache = ArtifactCache(tmp_path / "cache", built_for="test", max_bytes=250_000)
    keys = [_key(k) for k in (1, 2, 3)]
    cache.store(keys[0], _artifact(tmp_path / "out", "a.onnx", 100_000))
    cache.store(keys[1], _artifact(tmp_path / "out", "b.onnx", 100_000))
    old = time.time() - 60
    os.utime(cache._folder(keys[1].digest), (old, old))
    os.utime(cache._folder(keys[0].digest), (old + 1, old + 1))
    assert cache.load(keys[1], tmp_path / "got") is not None  # b used last
    cache.store(keys[2], _artifact(tmp_path / "out", "c.onnx", 100_000))
    assert cache.load(keys[0], tmp_path / "got") is None  # a went
    assert cache.load(keys[1], tmp_path / "got") is not None
    assert cache.load(keys[2], tmp_path / "got") is not None


# A user's own factory module: `net`, and another model whose entry could be put in its place.
USERMOD = textwrap.dedent("""
    import torch
    from torch import nn

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 8 * 8, 10))

    def other():
        torch.manual_seed(1)
        return nn.Sequential(nn.Flatten(), nn.Linear(8 * 8, 10))
""")
NET = "usermod.net.fp32.onnx"


@pytest.fixture()
def usermod(tmp_path, monkeypatch):
    (tmp_path / "usermod.py").write_text(USERMOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("usermod", None)


def export_fp32(spec: str, out, capsys) -> str:
    """Export one small fp32 ONNX artifact of `spec` to `out`; what it printed on stderr."""
    capsys.readouterr()
    assert main(["export", spec, "--input-shape", "1,1,8,8", "--format", "onnx",
                 "--precision", "fp32", "-o", str(out)]) == 0
    return capsys.readouterr().err


def entry_holding(cache, name: str):
    """The entry folder that holds the artifact `name`."""
    return next(p.parent for p in cache.glob(f"??/*/{name}"))


@pytest.mark.parametrize("record", ["its own", "this model's facts"])
def test_a_consistent_entry_of_another_model_is_not_served(artifact_cache, usermod, tmp_path,
                                                           capsys, record):
    export_fp32("usermod:net", tmp_path / "a", capsys)
    export_fp32("usermod:other", tmp_path / "b", capsys)
    mine = entry_holding(artifact_cache, NET)
    wanted = json.loads((mine / "entry.json").read_text())
    # The other model's entry, whole and agreeing with itself, where this model's is looked
    # up; its record names this key, and with "this model's facts" the facts too.
    shutil.rmtree(mine)
    shutil.copytree(entry_holding(artifact_cache, "usermod.other.fp32.onnx"), mine)
    swapped = json.loads((mine / "entry.json").read_text())
    swapped["key"] = mine.name
    if record == "this model's facts":
        swapped["facts"] = wanted.get("facts")
    (mine / "entry.json").write_text(json.dumps(swapped))

    err = export_fp32("usermod:net", tmp_path / "c", capsys)
    assert "reusing" not in err
    assert err.count("warning: ignoring the cached artifact") == 1
    assert ("describes model 'usermod.other', not 'usermod.net'" if record != "its own"
            else "built from other facts") in " ".join(err.split())
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [NET, f"{NET}.json"]
    assert file_sha256(tmp_path / "c" / NET) == file_sha256(tmp_path / "a" / NET)
    assert "reusing 1 artifact(s)" in export_fp32("usermod:net", tmp_path / "d", capsys)


def test_an_entry_naming_a_path_is_not_served_and_nothing_lands_outside_o(
        artifact_cache, usermod, tmp_path, capsys):
    export_fp32("usermod:net", tmp_path / "a", capsys)
    mine = entry_holding(artifact_cache, NET)
    # `../../../x` from the entry is beside the cache root: put a consistent copy there.
    beside = tmp_path / "x"
    shutil.copyfile(mine / NET, beside)
    shutil.copyfile(mine / f"{NET}.json", tmp_path / "x.json")
    record = json.loads((mine / "entry.json").read_text())
    (mine / "entry.json").write_text(json.dumps({**record, "file": "../../../x"}))

    out = tmp_path / "o1" / "o2" / "o3" / "out"
    err = export_fp32("usermod:net", out, capsys)
    assert not (tmp_path / "o1" / "x").exists()  # three levels above -o
    assert "reusing" not in err and "is not a plain file name" in err
    assert sorted(p.name for p in out.iterdir()) == [NET, f"{NET}.json"]
    assert beside.exists()  # what the record pointed at is not the cache's to remove


def _tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


def test_pruning_removes_only_what_it_can_prove_is_its_own(artifact_cache, usermod, tmp_path,
                                                          capsys):
    export_fp32("usermod:net", tmp_path / "a", capsys)
    export_fp32("usermod:other", tmp_path / "b", capsys)
    ours = sorted(p.parent for p in artifact_cache.glob("??/*/entry.json"))
    assert len(ours) == 2
    # The cache points at a shared folder: others' folders (two of them two letters long),
    # a two-letter link to the user's data, a key-named folder without a record, and a
    # hidden folder; each bigger than all entries and used before them.
    data = tmp_path / "data"
    for path in (data / "photos" / "cat.jpg", artifact_cache / "go" / "pkg-old" / "mod.a",
                 artifact_cache / "js" / "app" / "index.js",
                 artifact_cache / ours[0].parent.name / "notes" / "todo.txt",
                 artifact_cache / "ef" / ("ef" + "0" * 62) / "mine.txt",
                 artifact_cache / ".tmp-mine" / "draft.txt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(200_000))
    (artifact_cache / "da").symlink_to(data, target_is_directory=True)
    stale = artifact_cache / f".tmp-{'0' * 16}-{'0' * 8}"  # left by a killed store
    stale.mkdir()
    old = time.time() - 7200
    for folder in [*artifact_cache.glob("*/*"), *artifact_cache.glob(".*"), data / "photos"]:
        if folder not in ours:
            os.utime(folder, (old, old), follow_symlinks=False)
    before, user_data = _tree(artifact_cache), _tree(data)
    entry_bytes = sum(f.stat().st_size for folder in ours for f in folder.iterdir())

    ArtifactCache(artifact_cache, built_for="test", max_bytes=entry_bytes).prune()
    assert not stale.exists()
    assert _tree(artifact_cache) == before and _tree(data) == user_data

    ArtifactCache(artifact_cache, built_for="test", max_bytes=0).prune()
    assert not any(folder.exists() for folder in ours)
    assert _tree(artifact_cache) == {name: content for name, content in before.items()
                                     if not any(name.startswith(str(folder.relative_to(
                                         artifact_cache))) for folder in ours)}
    assert _tree(data) == user_data


def test_a_prefix_that_links_elsewhere_is_not_written_through(artifact_cache, usermod,
                                                              tmp_path, capsys):
    export_fp32("usermod:net", tmp_path / "a", capsys)
    prefix = entry_holding(artifact_cache, NET).parent
    shutil.rmtree(prefix)
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    prefix.symlink_to(data, target_is_directory=True)

    err = export_fp32("usermod:net", tmp_path / "b", capsys)
    assert "reusing" not in err and "is not a folder the cache made" in err
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"]
    assert file_sha256(tmp_path / "b" / NET) == file_sha256(tmp_path / "a" / NET)


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
