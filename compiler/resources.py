"""Locate the data shipped with pkgc: Jinja2 templates and base-image recipes.

In a wheel they live in ``compiler/_data``; in a source checkout (editable install, tests) at the
repository's top level.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the directory ``name`` ("templates" or "base-images") wherever it was installed
    (looked up once: the installation does not move while pkgc runs)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pkgc installation is incomplete: no '{name}' directory next to {_PACKAGE_DIR}")


def templates_dir() -> Path:
    return data_dir("templates")


def base_images_dir() -> Path:
    return data_dir("base-images")
