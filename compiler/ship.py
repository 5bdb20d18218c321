"""``ship(built, outputs)``: after a build, in this order: verify (a failing package is never
published), the OCI outputs (each written atomically), the push, the deploy settings.

An OCI-built image is published from pkgc's store; a Docker-built one is read from the engine, which
is connected only for what needs it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from compiler.emit.deploy import Platform
from compiler.emit.oci import OutputTarget
from compiler.emit.registry import PushTarget
from compiler.engines.base import Engine
from compiler.errors import BuildError
from compiler.options import Options
from compiler.reporter import Reporter
from compiler.result import BuildResult
from compiler.runtime.verify import VerifyRequest


@dataclass(frozen=True)
class AfterBuild:
    """What to do with the built image, parsed and checked before the build starts."""

    outputs: tuple[OutputTarget, ...]
    push: PushTarget | None
    verify: VerifyRequest | None
    deploy: Platform | None

    @property
    def any(self) -> bool:
        return bool(self.outputs or self.push or self.verify or self.deploy)


@dataclass
class Shipped:
    """What shipping did; its JSON joins the build's."""

    verify: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    push: dict[str, Any] | None = None
    manifest_digest: str | None = None  # of the published image
    deploy_settings: dict[str, Any] | None = None
    settings_text: str | None = None  # the deploy settings, as printed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.verify is not None:
            data["verify"] = self.verify
        if self.outputs or self.push is not None:
            data["outputs"] = self.outputs
            if self.push is not None:
                data["push"] = self.push
            data["manifest_digest"] = self.manifest_digest
        if self.deploy_settings is not None:
            data["deploy_settings"] = self.deploy_settings
        return data


def ship(
    result: BuildResult, after: AfterBuild, engine: Callable[[], Engine], options: Options, reporter: Reporter, shipped: Shipped
) -> Shipped:
    """Verify, publish and describe the built image, filling ``shipped`` as it goes (so a failed
    verification still reports what it found)."""
    if after.verify is not None:
        from compiler.commands.verify import describe
        from compiler.runtime.verify import verify_package
        from compiler.workspace import Workspace

        reporter.step(f"verifying {result.image}")
        with reporter.stage("verify"):
            verified = verify_package(engine(), Workspace(options.workspace), dataclasses.replace(after.verify, image=result.image))
        shipped.verify = verified.as_dict()
        reporter.step(describe(shipped.verify))
    if after.outputs or after.push:
        _publish(result, after, engine, reporter, options, shipped)
    if after.deploy is not None:
        from compiler.emit.deploy import deploy_facts, deploy_settings

        labels = _stored_labels(result, options) if result.builder == "oci" else _engine_labels(engine(), result.image)
        pulled = shipped.push["reference"] if shipped.push else result.image
        settings = deploy_settings(after.deploy, deploy_facts(pulled, labels, shipped.manifest_digest if after.push else None))
        shipped.deploy_settings, shipped.settings_text = settings.data, settings.text
    return shipped


def _engine_labels(engine: Engine, image: str) -> dict[str, str]:
    info = engine.image_info(image)
    return dict(info.labels) if info else {}


def _stored_labels(result: BuildResult, options: Options) -> dict[str, str]:
    """The labels of an OCI-built image, read from its config in pkgc's store."""
    from compiler.oci.store import OciStore

    store = OciStore.in_cache(options.cache_dir)
    config = store.read_json(store.read_json(result.manifest_digest)["config"]["digest"])
    return dict((config.get("config") or {}).get("Labels") or {})


def _publish(result: BuildResult, after: AfterBuild, engine: Callable[[], Engine], reporter: Reporter, options: Options, shipped: Shipped) -> None:
    from compiler.emit.publish import PublishRequest, publish

    request = PublishRequest(result.image, after.outputs, after.push, options.docker_host)
    with reporter.stage("push" if after.push and not after.outputs else "outputs") as stage:
        if result.builder == "oci":
            from compiler.oci.publish import publish_stored
            from compiler.oci.store import OciStore

            published = publish_stored(OciStore.in_cache(options.cache_dir), result.manifest_digest, request, reporter.detail)
        else:
            if engine().name != "docker":
                raise BuildError(f"--output/--push read the image from a Docker engine, not {engine().name}")
            published = publish(request, reporter.detail)
        stage.update(sum(out.size_bytes for out in published.outputs))
    for out in published.outputs:
        reporter.step(f"wrote {out.kind}:{out.path}:{out.tag} ({out.size_bytes / 1e6:.0f} MB, {out.digest[:19]}) in {out.seconds:.1f} s")
    shipped.outputs = [out.as_dict() for out in published.outputs]
    if published.push is not None:
        reporter.step(f"pushed {published.push.reference} ({published.push.digest}) in {published.push.seconds:.1f} s")
        shipped.push = published.push.as_dict()
    shipped.manifest_digest = published.digest
