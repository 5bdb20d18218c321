"""The typed result of ``pkgc build``: what ``--json`` prints (and the human line names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compiler.labels import SBOM_DIGEST

if TYPE_CHECKING:
    from compiler.built import BuiltImage
    from compiler.pipeline import Compiled


@dataclass(frozen=True)
class BuildResult:
    """One build: the image, the package it holds, the lock it was built from, and how it went."""

    image: str
    image_id: str
    mode: str
    model: str
    model_dir: str
    environment_strategy: str
    environment_reason: str
    python: str
    lock_file: str
    lock_status: str
    target_environment: str
    port: int | None
    content_tag: str
    content_hash: str
    sbom_digest: str | None
    reused: bool
    size_bytes: int
    build_seconds: float
    builder: str
    slim: bool  # --slim: installers and packages' test folders left out
    bytecode: bool  # byte-code shipped
    base_digest: str | None
    manifest_digest: str | None = None  # the OCI back end's image in pkgc's store
    loaded: bool = True
    deployment: dict[str, Any] | None = None
    model_image: dict[str, Any] | None = None  # readonly_mount: the model image in pkgc's store (compiler.oci.model_image)
    layers: tuple[dict[str, Any], ...] = ()  # the OCI back end's layers on the base (kind, why, digest, size)
    platforms: tuple[dict[str, Any], ...] = ()  # an image index: each platform's manifest digest and layers

    @classmethod
    def of(cls, compiled: Compiled, built: BuiltImage, target_environment: str) -> BuildResult:
        resolved, plan = compiled.resolved, compiled.plan
        pkg, strategy = resolved.package, resolved.strategy
        return cls(
            image=built.image, image_id=built.image_id, mode=pkg.mode.value, model=f"{pkg.model.name}:{pkg.model.version}",
            model_dir=pkg.model_dir, environment_strategy=strategy.kind, environment_reason=strategy.reason,
            python=strategy.python, lock_file=str(compiled.locked.path), lock_status=compiled.locked.status,
            target_environment=target_environment, port=plan.config.port, content_tag=built.content_tag,
            content_hash=built.content_hash, sbom_digest=plan.config.labels.get(SBOM_DIGEST), reused=built.reused,
            size_bytes=built.size, build_seconds=round(built.seconds, 2), builder=built.builder,
            slim=bool(plan.environment and plan.environment.slim),
            bytecode=bool(plan.environment is None or plan.environment.bytecode),
            base_digest=plan.base.digest or plan.base.image_id, manifest_digest=built.manifest_digest, loaded=built.loaded,
            deployment=resolved.spec_file.deployment.summary() if resolved.spec_file.deployment else None,
            model_image=compiled.model_image.as_dict() if compiled.model_image else None, layers=built.layers,
            platforms=built.platforms,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the OCI back end adds its manifest digest, whether the engine holds
        the image and its layers; a deployment input adds what it said; an image index (several
        platforms) lists each platform's image (``manifest_digest`` is then the index's)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("manifest_digest", "loaded", "layers"):
            if self.builder != "oci":
                del data[name]
        for name in ("deployment", "model_image"):
            if data[name] is None:
                del data[name]
        if not self.platforms:
            del data["platforms"]
        return data
