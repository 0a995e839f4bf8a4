"""Recipes: every shipped recipe loads; bad recipes are refused with the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecomp import paths
from edgecomp.compress.base import PASSES
from edgecomp.compress.prune import total_sparsity
from edgecomp.compress.recipe import ExportDefaults, known_recipes, load_recipe, run_recipe
from edgecomp.errors import InputError

SHIPPED = sorted(p.name.removesuffix(".toml") for p in paths.shipped("recipes").iterdir()
                 if p.name.endswith(".toml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_load(name):
    path = paths.shipped("recipes") / f"{name}.toml"
    recipe = load_recipe(str(path))
    assert recipe.name == name and recipe.passes
    assert load_recipe(name).source == str(path)  # a bare name finds it too
    assert set(known_recipes()) == set(SHIPPED)


def test_export_defaults_are_typed_and_dump_as_written():
    assert load_recipe("qat-int8").export == ExportDefaults(precision="int8")
    assert load_recipe("qat-int8").export.to_json() == {"precision": "int8"}
    assert load_recipe("structured-50").export.to_json() == {}
    both = ExportDefaults(precision="fp16", formats=["tflite", "onnx"])
    assert both.to_json() == {"precision": "fp16", "formats": ["tflite", "onnx"]}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ('[[pass]]\nname = "prune.magic"\n', r"pass\[0\]: unknown compression pass"),
    ('[[pass]]\nname = "fold"\n[[pass]]\nname = "prune.magnitude"\nsparsity = 2.0\n',
     r"pass\[1\]: .*sparsity must be between 0 and 1"),
    ('[[pass]]\nname = "qat"\n[[pass]]\nname = "fold"\n',
     r"pass\[1\]: 'fold' comes after 'qat', .* move 'qat' to the end"),
    ('[[pass]]\nsparsity = 0.5\n', r"pass\[0\]\.name: required"),
    ('name = "x"\n', "pass: a recipe needs at least one"),
    ('[[pass]\nname=', "not valid TOML"),
    ('colour = "red"\n[[pass]]\nname = "fold"\n',
     "colour: unknown key; expected one of name, description, pass, export"),
    ('[[pass]]\nname = "fold"\n[export]\nbits = 3\n',
     r"export\.bits: unknown key; expected one of precision, formats"),
    ('[[pass]]\nname = "fold"\n[export]\nprecision = "int9"\n',
     "export.precision: 'int9' is not one of fp32, fp16, int8, dynamic-int8"),
    ('[[pass]]\nname = "fold"\n[export]\nformats = ["tflite", "pb"]\n',
     r"export\.formats\[1\]: 'pb' is not one of tflite, onnx"),
])
def test_bad_recipes(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: ")


class _Sealing:
    """A pass that ties the weights to the export, as qat and fp16 do."""

    name = "test.sealing"
    must_come_last = True

    def apply(self, model, ctx):
        raise NotImplementedError


def test_a_pass_that_must_come_last_says_so_itself(tmp_path, monkeypatch):
    monkeypatch.setitem(PASSES.load(), _Sealing.name, _Sealing)
    load_recipe(write(tmp_path, '[[pass]]\nname = "fold"\n[[pass]]\nname = "test.sealing"\n'))
    with pytest.raises(InputError, match=r"pass\[1\]: 'fold' comes after 'test.sealing'"):
        load_recipe(write(tmp_path, '[[pass]]\nname = "test.sealing"\n'
                                    '[[pass]]\nname = "fold"\n'))


def test_unknown_recipe_name_lists_known_ones():
    with pytest.raises(InputError, match="known recipes: .*structured-50.* Add your own"):
        load_recipe("no-such-recipe")


def test_user_recipe_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_RECIPES", str(tmp_path))
    (tmp_path / "mine.toml").write_text('[[pass]]\nname = "prune.magnitude"\nsparsity = 0.5\n'
                                        'finetune_epochs = 0\n')
    assert load_recipe("mine").passes == (("prune.magnitude", {"sparsity": 0.5,
                                                               "finetune_epochs": 0}),)


def test_passes_chain_in_order(tmp_path, trained_mlp, context):
    recipe = load_recipe(write(tmp_path, '''
        [[pass]]
        name = "prune.magnitude"
        sparsity = 0.7
        finetune_epochs = 0
        [[pass]]
        name = "cluster"
        fc_bits = 3
        finetune_epochs = 0
    '''))
    model, reports = run_recipe(recipe, trained_mlp, context(trained_mlp))
    assert [r.name for r in reports] == ["prune.magnitude", "cluster"]
    assert total_sparsity(model) >= 0.69  # clustering kept the pruned zeros
    assert Path(reports[1].files["archive"]).is_file()


def test_a_recipe_of_too_many_passes_is_refused_naming_the_bound(tmp_path):
    """100,000 passes once ran for about 20 minutes and logged 200,000 lines."""
    path = write(tmp_path, '[[pass]]\nname = "fold"\n' * 100_000)
    with pytest.raises(InputError, match=r"pass: a recipe holds at most 64 \[\[pass\]\] "
                                         r"tables, this one has 100000") as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: ")
    assert len(load_recipe(write(tmp_path, '[[pass]]\nname = "fold"\n' * 64)).passes) == 64


def test_too_many_pass_flags_are_refused_like_a_recipe():
    from edgecomp.compress.recipe import recipe_from_passes

    with pytest.raises(InputError, match="at most 64"):
        recipe_from_passes(["fold"] * 65)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_exports_on_the_default_formats(name):
    """Checked before any pass runs: a shipped recipe keeps the formats that export its
    precision (fp16: LiteRT only, saying why ONNX is left out) and never ends in a
    format that refuses it."""
    from edgecomp.pipeline.agent import MeasureOptions
    from edgecomp.export import unsupported_reason
    from edgecomp.pipeline.apply import BoardSettings
    from edgecomp.pipeline.build import ExportSettings
    from edgecomp.pipeline.compress import recipe_export_defaults, recipe_formats
    from edgecomp.pipeline.request import ExportChoices

    recipe = load_recipe(name)
    every = BoardSettings(export=ExportSettings(), measure=MeasureOptions())
    checked, notes = recipe_formats(recipe, every, ExportChoices())
    precision, _ = recipe_export_defaults(recipe)
    assert checked.export.formats
    if precision is not None:
        assert all(unsupported_reason(f, precision) is None for f in checked.export.formats)
    assert len(notes) == len(every.export.formats) - len(checked.export.formats)
    if name == "fp16":
        assert [f.value for f in checked.export.formats] == ["tflite"]
        assert notes == ["recipe fp16 exports fp16, which onnx does not (onnxruntime's CPU "
                         "provider runs fp16 models slower than fp32): its onnx artifacts "
                         "are left out"]


def test_a_recipe_whose_precision_the_asked_format_cannot_export_is_refused_first():
    from edgecomp.pipeline.agent import MeasureOptions
    from edgecomp.pipeline.apply import BoardSettings
    from edgecomp.pipeline.build import ExportSettings
    from edgecomp.pipeline.compress import recipe_formats
    from edgecomp.pipeline.request import ExportChoices

    every = BoardSettings(export=ExportSettings(formats=("onnx",)), measure=MeasureOptions())
    with pytest.raises(InputError) as refused:
        recipe_formats(load_recipe("fp16"), every, ExportChoices(formats=("onnx",)))
    assert str(refused.value) == (
        "recipe fp16 exports fp16, which onnx does not (onnxruntime's CPU provider runs fp16 "
        "models slower than fp32); deploy it with --format tflite, or give --precision to "
        "export another one.")
    # The user's own precision replaces the recipe's: nothing to refuse here.
    kept, notes = recipe_formats(load_recipe("fp16"), every,
                                 ExportChoices(formats=("onnx",), precisions=("fp32",)))
    assert kept == every and notes == []
