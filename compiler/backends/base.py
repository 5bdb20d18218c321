"""The back-end interface: resolve a base, build plans into an image (or an index), read its labels,
publish it. Everything after resolve talks to a back end only through this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from compiler.built import BuiltImage
    from compiler.outputs.publish import PublishRequest, PublishResult
    from compiler.plan.types import BaseImage, ImagePlan
    from compiler.platform import Platform
    from compiler.reporter import Reporter
    from compiler.result import BuildResult

Log = Callable[[str], None]


class Backend(ABC):
    """One way of making the image. ``name`` is what ``--builder`` and ``--json`` call it."""

    name: str
    multi_platform: bool  # builds one image for several platforms (an OCI image index)

    @abstractmethod
    def resolve_base(self, reference: str, platform: Platform, python: str, required: bool, log: Log) -> BaseImage:
        """The base image for ``platform`` by digest (what its Python already has, when known); not
        ``required`` (``--emit``): without a digest when the base is not at hand."""

    @abstractmethod
    def build(self, plans: tuple[ImagePlan, ...], reporter: Reporter) -> BuiltImage:
        """Build the plans (one per platform, all tagged alike) into one image, named ``plans[0].tag``."""

    @abstractmethod
    def labels(self, result: BuildResult) -> dict[str, str]:
        """The built image's labels (of its first platform's image)."""

    @abstractmethod
    def publish(self, result: BuildResult, request: PublishRequest, log: Log) -> PublishResult:
        """Every ``--output`` and the push, all carrying the image's digest."""

    def attest_unpublished(self, attestor, result: dict) -> bool:
        """Make the provenance of an image that goes nowhere (no output, no push); False when this back
        end keeps none."""
        return False
