"""Facts about a base image (its Python, whether it has conda), from a recipe, a label, or a probe."""

from __future__ import annotations

import re

from compiler.engines.base import Engine
from compiler.errors import ResolveError
from compiler.labels import BaseImageLabels
from compiler.resolve.types import BaseImageFacts

_PROBE = [
    "sh",
    "-c",
    "for p in python3 python; do command -v $p >/dev/null 2>&1 && exec $p -c "
    "'import sys; print(\"%d.%d\" % sys.version_info[:2])'; done; echo none",
]


def base_image_facts(image: str, engine: Engine | None) -> BaseImageFacts:
    """Know an image's Python without guessing: recipe metadata, then image labels, then a probe run."""
    from compiler.baseimages.recipes import metadata_for_image

    recipe = metadata_for_image(image)
    if recipe is not None:
        return BaseImageFacts(image, recipe.python or None, bool(recipe.has_conda), f"recipe '{recipe.name}'")
    if engine is None:
        return BaseImageFacts(image, None, False, "unknown (no engine to inspect it)")
    info = engine.image_info(image)
    if info is None:
        raise ResolveError(
            f"base image '{image}' is not in the local engine and cannot be pulled from here; "
            "build one with 'pkgc base-image build debian-bookworm' or load it first"
        )
    stated = BaseImageLabels.from_labels(image, info.labels)
    if stated is not None:
        return BaseImageFacts(image, stated.python, stated.has_conda, "image labels")
    code, output = engine.run_command(image, _PROBE)
    match = re.search(r"^(\d+\.\d+)\s*$", output, re.MULTILINE)
    return BaseImageFacts(image, match.group(1) if match and code == 0 else None, False, "probe")
