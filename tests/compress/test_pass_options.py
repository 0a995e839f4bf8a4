"""Every numeric pass option has a range: a recipe asking for 10^9 epochs, a NaN learning
rate or 10^6-wide sparsity groups is refused when it loads, naming the file and field."""

from __future__ import annotations

import sys

import pytest

from edgecomp.cli import main
from edgecomp.compress.base import PASSES, make_pass, options_schema
from edgecomp.compress.recipe import load_recipe
from edgecomp.errors import InputError


@pytest.mark.parametrize("table, message", [
    ('name = "prune.magnitude"\nfinetune_epochs = 1e9', "finetune_epochs: must be an integer"),
    ('name = "prune.magnitude"\nfinetune_epochs = 1000000000',
     "finetune_epochs: must be less than or equal to 1000"),
    ('name = "prune.magnitude"\nlr = nan', "lr: must be a finite number"),
    ('name = "prune.magnitude"\nschedule = "gradual"\nsteps = 0',
     "steps: must be greater than or equal to 1"),
    ('name = "prune.structured"\nround_to = 100000', "round_to: must be less than or equal"),
    ('name = "qat"\nlr = -1.0', "lr: must be greater than 0"),
    ('name = "distill"\nepochs = -1', "epochs: must be greater than or equal to 0"),
    ('name = "prune.nm"\nm = 1000000', "m: must be less than or equal to 64"),
    ('name = "lowrank"\nenergy = 5.0', "energy: must be less than or equal to 1"),
    ('name = "early_exit"\nthresholds = [0.5, inf]', "thresholds[1]: must be a finite number"),
    ('name = "separable"\nmin_in = 0', "min_in: must be greater than or equal to 1"),
])
def test_options_out_of_range_are_refused_with_file_and_field(tmp_path, table, message):
    path = tmp_path / "r.toml"
    path.write_text(f"[[pass]]\n{table}\n")
    with pytest.raises(InputError) as err:
        load_recipe(str(path))
    assert str(err.value).startswith(f"{path}: pass[0]: ")
    assert message in str(err.value)


@pytest.fixture()
def tiny_model(tmp_path, monkeypatch):
    """A factory for `compress`, so the CLI tests need not train the demo."""
    (tmp_path / "tinymodels.py").write_text(
        "from torch import nn\n\ndef mlp():\n    return nn.Sequential(nn.Flatten(), "
        "nn.Linear(64, 10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tinymodels:mlp"
    sys.modules.pop("tinymodels", None)


def compress(recipe: str, model: str) -> int:
    return main(["compress", model, "--input-shape", "1,1,8,8", "--recipe", recipe,
                 "-o", "out"])


def test_a_recipe_out_of_range_writes_nothing(tmp_path, monkeypatch, capsys, tiny_model):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text('[[pass]]\nname = "prune.magnitude"\n'
                                     "finetune_epochs = -1\n")
    code = compress("r.toml", tiny_model)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "Traceback" not in err
    assert "r.toml: pass[0]: pass 'prune.magnitude': finetune_epochs: must be greater" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_numeric_option_refuses_a_huge_value(name):
    """A number without bounds is how 10^9 epochs got through: every int or float option
    of every pass refuses 10^12, and the defaults are within the ranges."""
    make_pass(name, {})
    for field, info in options_schema(PASSES[name]).__pydantic_fields__.items():
        default = info.default
        if isinstance(default, bool):
            continue
        if isinstance(default, int):
            huge = 10**12
        elif isinstance(default, float) or "float" in repr(info.annotation):
            huge = 1e12
        else:
            continue
        with pytest.raises(InputError):
            make_pass(name, {field: huge})


@pytest.mark.parametrize("name", ["x/../../../escape", "../up", "/abs", ".hidden", "a b"])
def test_a_recipe_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name):
    path = tmp_path / "r.toml"
    path.write_text(f'name = "{name}"\n[[pass]]\nname = "fold"\n')
    with pytest.raises(InputError, match=rf"{path}: name: .* is not a recipe name"):
        load_recipe(str(path))


def test_a_recipe_name_never_writes_outside_the_output_folder(tmp_path, monkeypatch, capsys,
                                                               tiny_model):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "r.toml").write_text('name = "x/../../../escape"\n[[pass]]\nname = "fold"\n')
    code = compress("r.toml", tiny_model)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "Traceback" not in err
    assert "r.toml: name: 'x/../../../escape' is not a recipe name" in err
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in written if p.suffix != ".pyc"] == ["a/b/r.toml", "tinymodels.py"]
