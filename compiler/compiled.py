"""The pipeline's intermediate results: ``Resolved`` (the resolve stage's output) and ``Compiled``
(everything up to the plans, which the back end builds)."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.backends.base import Backend
from compiler.backends.oci.model_image import ModelImage
from compiler.deps.types import MergedEnvironment
from compiler.engines.base import Engine
from compiler.environment.strategy import EnvironmentStrategy
from compiler.lock.locker import LockResult
from compiler.plan.types import ImagePlan
from compiler.platform import Platform
from compiler.resolve import ResolvedPackage
from compiler.spec.load import SpecFile


@dataclass(frozen=True)
class Resolved:
    """The resolve stage's output: the package, its merged dependencies, how to build it."""

    spec_file: SpecFile
    package: ResolvedPackage
    merged: MergedEnvironment
    server_note: str | None
    strategy: EnvironmentStrategy
    backend: Backend
    engine: Engine | None
    platforms: tuple[Platform, ...]  # the image's, in the index's order

    @property
    def builder(self) -> str:
        return self.backend.name


@dataclass(frozen=True)
class Compiled:
    """``compile()``'s output: everything up to the plan, which both back ends build."""

    resolved: Resolved
    locked: LockResult
    plans: tuple[ImagePlan, ...]  # one per platform, in ``resolved.platforms``' order
    version: str  # the target environment version the image is tagged with
    reserved: bool  # the version is reserved in the workspace until the build is recorded
    model_image: ModelImage | None = None  # a readonly_mount package's model as its own image, in pkgc's store

    @property
    def plan(self) -> ImagePlan:
        """The first platform's plan (what the record, the result and ``--emit`` describe)."""
        return self.plans[0]
