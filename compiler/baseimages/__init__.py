"""Base images pkgc builds packages on: recipes as data (base-images/<name>/recipe.toml) and their build."""

from compiler.baseimages.build import BaseImageResult, build_base_image
from compiler.baseimages.recipes import BaseImageRecipe, list_recipes, load_recipe, metadata_for_image, recipe_digest

__all__ = [
    "BaseImageRecipe",
    "BaseImageResult",
    "build_base_image",
    "list_recipes",
    "load_recipe",
    "metadata_for_image",
    "recipe_digest",
]
