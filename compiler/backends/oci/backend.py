"""The OCI back end: pkgc writes every layer itself into its OCI store (no daemon, no RUN), one
image per platform, an image index when there are several; loaded into the engine when one answers
and the host's platform is among them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from compiler.backends.base import Backend, Log
from compiler.built import BuiltImage
from compiler.errors import BuildError
from compiler.plan.types import BaseImage

if TYPE_CHECKING:
    from compiler.outputs.publish import PublishRequest, PublishResult
    from compiler.engines.base import Engine
    from compiler.backends.oci.layers import LayerOptions
    from compiler.plan.types import ImagePlan
    from compiler.platform import Platform
    from compiler.reporter import Reporter
    from compiler.result import BuildResult


class OciBackend(Backend):
    name = "oci"
    multi_platform = True

    def __init__(self, cache_dir: Path, engine: Engine | None, layer_options: LayerOptions):
        from compiler.oci.store import OciStore

        self.cache_dir, self.engine, self.layer_options = cache_dir, engine, layer_options
        self.store = OciStore.in_cache(cache_dir)

    def resolve_base(self, reference: str, platform: Platform, python: str, required: bool, log: Log) -> BaseImage:
        """Imported into pkgc's store: manifest digest, image id, and what its Python already has."""
        from compiler.oci.base import resolve_base
        from compiler.backends.oci.scan import scan_base

        try:
            found = resolve_base(reference, self.store, self.engine, log, platform)
        except BuildError:
            if required:
                raise
            return BaseImage(reference)
        packages = scan_base(self.store, found).python_packages(python)
        if packages:
            log(f"base image {reference}: its Python has {len(packages)} packages, which the environment sees")
        return BaseImage(reference, found.manifest_digest, found.manifest["config"]["digest"], packages)

    def build(self, plans: tuple[ImagePlan, ...], reporter: Reporter) -> BuiltImage:
        from compiler.backends.oci.builder import build_oci_images

        if self.layer_options.cache is not None:
            from compiler.cache.registry_cache import share_base

            for plan in plans:
                share_base(self.layer_options.cache, plan.base.digest)

        return build_oci_images(plans, self.store, self.engine, self.layer_options, reporter).built()

    def labels(self, result: BuildResult) -> dict[str, str]:
        """Read from the image's config in the store (an index: its first platform's)."""
        from compiler.oci.outputs import StoredImage

        stored = StoredImage.read(self.store, result.manifest_digest or "")
        image = stored.children[0] if stored.children else stored
        config = self.store.read_json(image.config_digest)
        return dict((config.get("config") or {}).get("Labels") or {})

    def publish(self, result: BuildResult, request: PublishRequest, log: Log) -> PublishResult:
        from compiler.outputs.stored import publish_stored

        return publish_stored(self.store, result.manifest_digest or "", request, log)

    def attest_unpublished(self, attestor, result: dict) -> bool:
        from compiler.provenance.build_step import attest_stored

        attest_stored(attestor, result, self.cache_dir)
        return True
