"""The Dockerfile back end: the plan rendered as a Dockerfile and context, built by the engine
(network off). One platform, the engine's own: it runs steps inside the image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from compiler.backends.base import Backend, Log
from compiler.built import BuiltImage
from compiler.errors import BuildError
from compiler.plan.types import BaseImage
from compiler.platform import Platform

if TYPE_CHECKING:
    from compiler.outputs.publish import PublishRequest, PublishResult
    from compiler.engines.base import Engine
    from compiler.plan.types import ImagePlan
    from compiler.reporter import Reporter
    from compiler.result import BuildResult


def single_platform_error(platforms) -> str:
    return (f"the Dockerfile back end builds for the engine's platform ({Platform.host()}) only, not "
            f"{', '.join(map(str, platforms))}; use --builder oci")  # fmt: skip


class DockerfileBackend(Backend):
    name = "docker"
    multi_platform = False

    def __init__(self, engine: Engine, template: Path | None, no_cache: bool, daemon_host: str | None = None):
        self.engine, self.template, self.no_cache, self.daemon_host = engine, template, no_cache, daemon_host

    def resolve_base(self, reference: str, platform: Platform, python: str, required: bool, log: Log) -> BaseImage:
        """By the engine's image id."""
        if platform != Platform.host():
            raise BuildError(single_platform_error([platform]))
        info = self.engine.image_info(reference)
        if info is None and required:
            raise BuildError(f"base image {reference} is not in the engine; build it with 'pkgc base-image build' or load it")
        return BaseImage(reference, None, info.id if info else None)

    def build(self, plans: tuple[ImagePlan, ...], reporter: Reporter) -> BuiltImage:
        from compiler.build import build_image

        if len(plans) != 1 or plans[0].platform != Platform.host():
            raise BuildError(single_platform_error([p.platform for p in plans]))
        return build_image(plans[0], self.engine, reporter, self.template, self.no_cache)

    def labels(self, result: BuildResult) -> dict[str, str]:
        info = self.engine.image_info(result.image)
        return dict(info.labels) if info else {}

    def publish(self, result: BuildResult, request: PublishRequest, log: Log) -> PublishResult:
        """Staged from the engine through skopeo."""
        from compiler.outputs.publish import publish

        if self.engine.name != "docker":
            raise BuildError(f"--output/--push read the image from a Docker engine, not {self.engine.name}")
        return publish(request, log)
