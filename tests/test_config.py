"""The schema loader and the locations: one sentence naming file and field, user files over
shipped ones, every EDGECOMP_* override honoured, and shipped data found in a wheel install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgecomp import paths
from edgecomp.cli import main
from edgecomp.compress.recipe import known_recipes, load_recipe
from edgecomp.config import find_tomls, load_toml
from edgecomp.errors import InputError
from edgecomp.hardware.profiles import Profile, load_profile_file, load_profiles
from edgecomp.hardware.targets import TargetFile, load_targets

ROOT = Path(__file__).resolve().parent.parent
PI4 = (paths.shipped("profiles") / "pi4.toml").read_text()
SHIPPED_PROFILES = {"pi4", "pi5", "pi-zero-2w", "android-arm64", "jetson-nano",
                    "jetson-orin-nano", "x86-64"}


def test_a_misspelt_op_names_file_and_index(tmp_path):
    path = tmp_path / "pi4.toml"
    # pi4's first delegate (xnnpack) lists conv2d, depthwise_conv2d, linear, relu, ...
    path.write_text(PI4.replace('"linear", "relu"', '"linear", "conv2dd"', 1))
    with pytest.raises(InputError) as err:
        load_profile_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: delegates[0].ops[3]: 'conv2dd' is not one of ")
    assert "conv2d, conv_transpose2d, depthwise_conv2d" in message and "\n" not in message


@pytest.mark.parametrize("text, where", [
    ('[target]\nname = "pi"\nhost = "h"\nprofile = "pi4"\ncolour = "red"\n', "target.colour"),
    ('[target]\nname = "pi"\nhost = "h"\nprofile = "pi4"\nruntime = "tflite"\n',
     "target.runtime"),
    ('[target]\nname = "pi"\nhost = "h"\nprofile = "pi4"\npower_probe = "ina999"\n',
     "target.power_probe"),
    ('[target]\nname = "pi"\nhost = "h"\n', "target.profile"),
    ('[targets]\nname = "pi"\n', "targets"),
])
def test_target_errors_are_one_sentence_naming_the_field(tmp_path, text, where):
    path = tmp_path / "board.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_toml(path, TargetFile)
    assert str(err.value).startswith(f"{path}: {where}: ")


def test_text_needs_a_source_and_the_source_is_named():
    with pytest.raises(InputError, match=r"^--set flags: schema_version: must be 1, got 2\.$"):
        load_toml(PI4.replace("schema_version = 1", "schema_version = 2"), Profile,
                  source="--set flags")


def test_unknown_key_lists_the_known_ones(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(PI4.replace("[thermal]", "[thermal]\nthrottle = 70"))
    with pytest.raises(InputError, match=r"thermal\.throttle: unknown key; expected one of "
                                         r"throttle_c, notes\.$"):
        load_profile_file(path)


def test_user_files_override_shipped_ones_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_PROFILES", str(tmp_path / "profiles"))
    monkeypatch.setenv("EDGECOMP_RECIPES", str(tmp_path / "recipes"))
    (tmp_path / "profiles").mkdir()
    (tmp_path / "recipes").mkdir()
    (tmp_path / "profiles" / "pi4.toml").write_text(PI4.replace("ram_mb = 4096",
                                                                "ram_mb = 8192"))
    (tmp_path / "recipes" / "fp16.toml").write_text('[[pass]]\nname = "fold"\n')
    (tmp_path / "recipes" / "notes.txt").write_text("not a recipe")
    assert load_profiles()["pi4"].ram_mb == 8192
    assert load_profiles()["pi4"].source == str(tmp_path / "profiles" / "pi4.toml")
    assert load_profiles()["pi5"].source.endswith(os.path.join("shipped", "profiles",
                                                               "pi5.toml"))
    recipe = load_recipe("fp16")
    assert recipe.passes == (("fold", {}),) and recipe.source.startswith(str(tmp_path))
    assert "notes" not in known_recipes() and "qat-int8" in known_recipes()


def test_find_tomls_later_directory_wins_and_missing_ones_are_skipped(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x.toml").write_text("")
    (first / "y.toml").write_text("")
    (second / "x.toml").write_text("")
    found = find_tomls(first, tmp_path / "missing", second)
    assert found == {"x": second / "x.toml", "y": first / "y.toml"}


def test_edgecomp_overrides_are_honoured(tmp_path, monkeypatch):
    for variable in ("PROFILES", "TARGETS", "RECIPES", "DB", "CACHE"):
        monkeypatch.setenv(f"EDGECOMP_{variable}", str(tmp_path / variable.lower()))
    assert paths.profiles_dir() == tmp_path / "profiles"
    assert paths.targets_dir() == tmp_path / "targets"
    assert paths.known_hosts() == tmp_path / "targets" / "known_hosts"
    assert paths.recipes_dir() == tmp_path / "recipes"
    assert paths.db_path() == tmp_path / "db"
    assert paths.cache_dir() == tmp_path / "cache"


@pytest.mark.skipif(sys.platform != "linux", reason="XDG locations are the Linux defaults")
def test_linux_defaults_follow_xdg_and_home(tmp_path, monkeypatch):
    for variable in ("PROFILES", "TARGETS", "RECIPES", "DB", "CACHE"):
        monkeypatch.delenv(f"EDGECOMP_{variable}", raising=False)
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.profiles_dir() == tmp_path / ".config" / "edgecomp" / "profiles"
    assert paths.targets_dir() == tmp_path / ".config" / "edgecomp" / "targets"
    assert paths.recipes_dir() == tmp_path / ".config" / "edgecomp" / "recipes"
    assert paths.db_path() == tmp_path / ".local" / "share" / "edgecomp" / "results.db"
    assert paths.cache_dir() == tmp_path / ".cache" / "edgecomp"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.recipes_dir() == tmp_path / "cfg" / "edgecomp" / "recipes"
    assert paths.db_path() == tmp_path / "data" / "edgecomp" / "results.db"


def test_example_targets_are_valid_but_not_inventory(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGECOMP_TARGETS", str(tmp_path))
    examples = sorted((ROOT / "examples" / "targets").glob("*.toml"))
    assert examples
    for path in examples:
        load_toml(path, TargetFile)
    assert load_targets() == {}


@pytest.mark.slow
def test_an_int9_recipe_is_refused_before_anything_is_written(tmp_path, capsys):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[[pass]]\nname = "fold"\n[export]\nprecision = "int9"\n')
    out = tmp_path / "out"
    assert main(["compress", "--recipe", str(recipe), "-o", str(out)]) == 1
    error = capsys.readouterr().err
    assert f"{recipe}: export.precision: 'int9' is not one of" in " ".join(error.split())
    assert not out.exists()


@pytest.mark.slow
def test_a_wheel_install_finds_its_shipped_profiles_and_recipes(tmp_path):
    """Build the wheel, install it elsewhere, and run it outside the checkout."""
    python = sys.executable
    # Build from a copy: setuptools reuses a checkout's build/ folder, stale files and all.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "edgecomp", source / "edgecomp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "wheel"), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheel, = (tmp_path / "wheel").glob("edgecomp-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", "--target",
                                str(site), str(wheel)], capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    for kind in ("PROFILES", "RECIPES", "TARGETS"):
        (tmp_path / kind.lower()).mkdir()
        env[f"EDGECOMP_{kind}"] = str(tmp_path / kind.lower())

    def run(*args: str) -> str:
        result = subprocess.run([python, *args], cwd=elsewhere, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    where = run("-c", "import edgecomp; print(edgecomp.__file__)").strip()
    assert Path(where).is_relative_to(site)
    listed = run("-m", "edgecomp.cli", "profiles", "list")
    assert all(name in listed for name in SHIPPED_PROFILES)
    recipes = run("-c", "from edgecomp.compress.recipe import known_recipes, load_recipe; "
                        "print(sorted(known_recipes())); print(load_recipe('qat-int8').source)")
    names, source = recipes.strip().splitlines()
    assert "structured-50" in names and "qat-int8" in names
    assert Path(source).is_relative_to(site)
    assert "plan for" in run("-m", "edgecomp.cli", "plan", "--target", "pi4")
