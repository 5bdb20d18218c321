"""``ship(built, outputs)``: after a build, in this order: verify (a failing package is never
published), the OCI outputs (each written atomically), the push, the deploy settings.

An OCI-built image is published from pkgc's store; a Docker-built one is read from the engine, which
is connected only for what needs it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable


if TYPE_CHECKING:  # imported where used: a build that ships nothing does not pay for them
    from compiler.backends import Backend
    from compiler.deploy.settings import Platform
    from compiler.outputs.model_image import ModelTargets
    from compiler.outputs.targets import OutputTarget
    from compiler.oci.reference import PushTarget
    from compiler.engines.base import Engine
    from compiler.options import Options
    from compiler.provenance.build_step import ProvenanceRequest
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
    provenance: ProvenanceRequest | None = None  # --sign-key, the flags, the start time
    model: ModelTargets | None = None  # --model-output/--model-push: the model image's outputs and push

    @property
    def any(self) -> bool:
        return bool(self.outputs or self.push or self.verify or self.deploy or (self.model and self.model.any))


@dataclass
class Shipped:
    """What shipping did; its JSON joins the build's."""

    verify: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    push: dict[str, Any] | None = None
    manifest_digest: str | None = None  # of the published image
    deploy_settings: dict[str, Any] | None = None
    settings_text: str | None = None  # the deploy settings, as printed
    provenance: dict[str, Any] | None = None  # the in-toto statement (SLSA provenance v1)
    attestations: dict[str, Any] | None = None  # the referrers attached to the outputs and the push
    model_image: dict[str, Any] | None = None  # the model image with its outputs and push (replaces the build's)

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
        if self.provenance is not None:
            data["provenance"] = self.provenance
        if self.attestations is not None:
            data["attestations"] = self.attestations
        if self.model_image is not None:
            data["model_image"] = self.model_image
        return data


def ship(
    result: BuildResult, backend: Backend, after: AfterBuild, engine: Callable[[], Engine], options: Options, reporter: Reporter,
    shipped: Shipped,
) -> Shipped:  # fmt: skip
    """Verify, publish and describe the built image, filling ``shipped`` as it goes (so a failed
    verification still reports what it found)."""
    from compiler.outputs.model_image import ModelTargets, check_mode, publish_model_image

    model_targets = after.model or ModelTargets()
    check_mode(result.image, result.mode, result.model_image, model_targets)
    if after.verify is not None:
        _verify(result, after.verify, engine, options, reporter, shipped)
    attestor = after.provenance.attestor(result.to_json()) if after.provenance is not None else None
    if after.outputs or after.push:
        _publish(result, backend, after, reporter, options, shipped, attestor)
    elif attestor is not None and backend.attest_unpublished(attestor, result.to_json()):
        _record(shipped, attestor, attached=False)  # the provenance only: there is nothing to attach to
    shipped.model_image, model_image = publish_model_image(result.model_image, model_targets, options.cache_dir, reporter.step)
    if after.deploy is not None:
        from compiler.deploy.settings import deploy_facts, deploy_settings

        labels = backend.labels(result)
        pulled = shipped.push["reference"] if shipped.push else result.image
        settings = deploy_settings(after.deploy, deploy_facts(pulled, labels, shipped.manifest_digest if after.push else None, model_image))
        shipped.deploy_settings, shipped.settings_text = settings.data, settings.text
    return shipped


def _verify(result: BuildResult, request: VerifyRequest, engine: Callable[[], Engine], options: Options, reporter: Reporter,
            shipped: Shipped) -> None:  # fmt: skip
    """Each platform's image: the ELF check, then the smoke test (in the engine for the host's
    platform, under qemu-user for another). Several platforms: ``verify`` lists each."""
    from compiler.oci.store import OciStore
    from compiler.platform import Platform
    from compiler.runtime.verify import describe, verify_image
    from compiler.workspace import Workspace

    platforms = [Platform.parse(p["platform"]) for p in result.platforms] or [None]
    found = []
    for platform in platforms:
        reporter.step(f"verifying {result.image}" + (f" for {platform}" if platform else ""))
        with reporter.stage("verify"):
            wanted = dataclasses.replace(request, image=result.image, platform=platform)
            verified = verify_image(wanted, Workspace(options.workspace), OciStore.in_cache(options.cache_dir), options.cache_dir, engine)
        found.append(verified.as_dict())
        shipped.verify = found[0] if len(found) == 1 else {"passed": True, "platforms": found}
        reporter.step(describe(found[-1]))


def _record(shipped: Shipped, attestor, pushed=None, attached: bool = True) -> None:
    from compiler.provenance.build_step import record

    made: dict[str, Any] = {}
    record(made, attestor, pushed, attached)
    shipped.provenance, shipped.attestations = made.get("provenance"), made.get("attestations")


def _publish(
    result: BuildResult, backend: Backend, after: AfterBuild, reporter: Reporter, options: Options, shipped: Shipped,
    attestor=None,
) -> None:  # fmt: skip
    from compiler.outputs.publish import PublishRequest

    request = PublishRequest(result.image, after.outputs, after.push, options.docker_host, attestor)
    with reporter.stage("push" if after.push and not after.outputs else "outputs") as stage:
        published = backend.publish(result, request, reporter.detail)
        stage.update(sum(out.size_bytes for out in published.outputs))
    for out in published.outputs:
        reporter.step(f"wrote {out.kind}:{out.path}:{out.tag} ({out.size_bytes / 1e6:.0f} MB, {out.digest[:19]}) in {out.seconds:.1f} s")
    shipped.outputs = [out.as_dict() for out in published.outputs]
    if published.push is not None:
        reporter.step(f"pushed {published.push.reference} ({published.push.digest}) in {published.push.seconds:.1f} s")
        shipped.push = published.push.as_dict()
    shipped.manifest_digest = published.digest
    if attestor is not None:
        _record(shipped, attestor, published.referrers_pushed)
        if shipped.attestations is not None:
            reporter.step(f"attached {len(shipped.attestations['referrers'])} referrers (SBOM, provenance"
                          f"{', signed' if attestor.signer else ''}) to {published.digest[:19]}")  # fmt: skip
