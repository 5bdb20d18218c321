"""Typed input of the SBOM generator: everything it states, decided before it runs (it does no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.labels import SBOM_DIGEST as SBOM_LABEL  # noqa: F401  (the label contract owns the name)
from typing import TYPE_CHECKING

from compiler.lock.types import Lock

if TYPE_CHECKING:  # the plan's types import the SBOM's: only the annotation is needed here
    from compiler.plan.types import BasePackage

SBOM_IN_IMAGE = "/opt/pkgc/sbom.cdx.json"


@dataclass(frozen=True)
class TreeComponent:
    """A file tree in the image (the model, the code, an extra input) named by pkgc's tree digest."""

    name: str
    version: str | None
    digest: str  # 64 hex: compiler.workspace.trees.tree_digest
    path: str  # where it is (or is mounted) in the container


@dataclass(frozen=True)
class SbomInputs:
    """What one package's SBOM describes; nothing per build (no version, no time), so equal inputs
    give equal bytes."""

    package: str  # the target environment's name
    mode: str  # copy | readonly_mount (a readonly_mount model is expected, not contained)
    model: TreeComponent
    model_type: str
    code: TreeComponent | None
    inputs: tuple[TreeComponent, ...]
    base_image: str
    base_image_id: str | None  # sha256:<64 hex>: the sha256 of its config (the engine's image id)
    lock: Lock
    pkgc_version: str
    base_packages: tuple[BasePackage, ...] = ()  # the base interpreter's own packages (from its dist-info)
