"""Hardware profiles: every shipped profile loads; a malformed one names its file and field."""

from __future__ import annotations

import pytest

from edgecomp import paths
from edgecomp.errors import InputError
from edgecomp.hardware.profiles import load_profile_file, load_profiles

REQUIRED = {"pi4", "pi5", "pi-zero-2w", "android-arm64", "jetson-nano", "jetson-orin-nano",
            "x86-64"}


def test_every_shipped_profile_loads():
    profiles = load_profiles()
    assert REQUIRED <= set(profiles)
    for name in REQUIRED:
        profile = profiles[name]
        assert profile.cpu.cores >= 1 and profile.ram_mb > 0
        text = (paths.shipped("profiles") / f"{name}.toml").read_text()
        assert "# [1]" in text or "Sources" in text, f"{name} cites no sources"


def test_facts_that_drive_decisions():
    profiles = load_profiles()
    assert "dotprod" not in profiles["pi4"].cpu.isa and "dotprod" in profiles["pi5"].cpu.isa
    assert profiles["jetson-orin-nano"].has("sparsity-2:4")
    assert not profiles["jetson-nano"].has("int8-tensor-cores")
    assert profiles["android-arm64"].delegate("nnapi").deprecated
    assert len(profiles["android-arm64"].cpu.clusters) == 3
    assert profiles["pi-zero-2w"].ram_mb == 512


BASE = (paths.shipped("profiles") / "pi4.toml").read_text()


@pytest.mark.parametrize("edit, field", [
    (lambda t: t.replace("ram_mb = 4096", 'ram_mb = "lots"'), "ram_mb: must be an integer"),
    (lambda t: t.replace('name = "pi4"', 'name = "pi4"\ncolour = "red"'), "colour: unknown key"),
    (lambda t: t.replace('arch = "aarch64"\n', ""), "cpu.arch: required, but missing"),
    (lambda t: t.replace("count = 4", "count = 4.5"), "cpu.clusters[0].count: must be an integer"),
    (lambda t: t.replace("count = 4", "count = 0"), "cpu.clusters[0].count: must be greater"),
    (lambda t: t.replace("schema_version = 1", "schema_version = 9"),
     "schema_version: must be 1, got 9"),
    (lambda t: t.replace('delegates = ["xnnpack"]', 'delegates = ["hexagon"]'),
     "runtimes[0].delegates[0]: 'hexagon' is not one of"),
    (lambda t: t.replace('delegates = ["xnnpack"]', 'delegates = ["gpu"]'),
     "runtimes[0].delegates[0]: ai_edge_litert names delegate 'gpu', which has no"),
    (lambda t: t.replace("memory_budget = 0.5", "memory_budget = 3"), "memory_budget: must be"),
    (lambda t: t.replace('isa = ["neon"', 'isa = ["neonn"'), "cpu.isa[0]: 'neonn' is not one of"),
    (lambda t: t.replace('precisions = ["fp32", "int8"]', 'precisions = ["fp32", "int4"]'),
     "delegates[0].precisions[1]: 'int4' is not one of"),
    (lambda t: t.replace('unit = "cpu"', 'unit = "dsp"', 1), "delegates[0].unit: 'dsp'"),
    (lambda t: t.replace('kind = "none"', 'kind = "ina999"'), "power_probe.kind: 'ina999'"),
    (lambda t: t.replace("[thermal]", "[thermal]\nfan = true"), "thermal.fan: unknown key"),
    (lambda t: t + "\n[oops", "not valid TOML"),
])
def test_malformed_profile_names_the_field(tmp_path, edit, field):
    path = tmp_path / "broken.toml"
    path.write_text(edit(BASE))
    with pytest.raises(InputError) as err:
        load_profile_file(path)
    assert str(err.value).startswith(f"{path}: {field}")


def test_user_profile_overrides_and_adds(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_PROFILES", str(tmp_path))
    (tmp_path / "pi4.toml").write_text(BASE.replace("ram_mb = 4096", "ram_mb = 8192"))
    (tmp_path / "mine.toml").write_text(BASE.replace('name = "pi4"', 'name = "mine"'))
    profiles = load_profiles()
    assert profiles["pi4"].ram_mb == 8192 and "mine" in profiles


def test_a_broken_user_profile_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_PROFILES", str(tmp_path))
    (tmp_path / "bad.toml").write_text(BASE.replace("ram_mb = 4096", "ram_mb = -"))
    with pytest.raises(InputError, match="bad.toml"):
        load_profiles()
