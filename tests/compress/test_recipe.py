"""Recipes: every shipped recipe loads; bad recipes are refused with the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecomp.compress.recipe import REPO_RECIPES, load_recipe, run_recipe
from edgecomp.compress.prune import total_sparsity
from edgecomp.errors import InputError


@pytest.mark.parametrize("path", sorted(REPO_RECIPES.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_recipes_load(path):
    recipe = load_recipe(str(path))
    assert recipe.name == path.stem and recipe.passes
    assert load_recipe(path.stem).source == str(path)  # a bare name finds it too


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ('[[pass]]\nname = "prune.magic"\n', r"\[\[pass\]\] number 1: unknown compression pass"),
    ('[[pass]]\nname = "prune.magnitude"\nsparsity = 2.0\n', "sparsity must be between 0 and 1"),
    ('[[pass]]\nname = "qat"\n[[pass]]\nname = "fold"\n', "move 'qat' to the end"),
    ('name = "x"\n', "needs at least one"),
    ('[[pass]\nname=', "not valid TOML"),
    ('colour = "red"\n[[pass]]\nname = "fold"\n', "unknown keys"),
    ('[[pass]]\nname = "fold"\n[export]\nbits = 3\n', r"\[export\] takes precision"),
])
def test_bad_recipes(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_recipe(write(tmp_path, text))


def test_unknown_recipe_name_lists_known_ones():
    with pytest.raises(InputError, match="known recipes: .*structured-50"):
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
