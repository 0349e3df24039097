"""Recipes name training settings; every one of them is a valid training configuration."""

from __future__ import annotations

import pytest

from server.learning.recipes import DEFAULT_RECIPE, PARENT_FIELDS, RECIPES, recipe_named
from server.training.train import TrainConfig


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_valid_training_configuration(name: str) -> None:
    TrainConfig(**recipe_named(name).training())
    TrainConfig(**recipe_named(name).training(has_parent=False))


def test_without_a_parent_a_recipe_leaves_out_the_ways_of_keeping_one() -> None:
    recipe = recipe_named(DEFAULT_RECIPE)
    assert recipe.training()["parent_share"] > 0  # the default blends its parent back in

    from_new_weights = recipe.training(has_parent=False)

    assert not set(PARENT_FIELDS) & set(from_new_weights)
    assert from_new_weights["replay"] == recipe.replay and from_new_weights["lr"] == recipe.lr


def test_an_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown recipe 'gentle'.*balanced"):
        recipe_named("gentle")
