"""Stage build, OCI back end: the plan's image written directly as OCI blobs, no daemon needed.

base (by digest) -> user, environment (a few layers), runtime, model, code layers -> config -> manifest, all in
pkgc's OCI store; then loaded into the engine when one answers. The manifest digest names the
image: same plan, same lock, same model and code give the same digest, with or without an engine."""

from __future__ import annotations

import time
from dataclasses import dataclass

from compiler.built import BuiltImage
from compiler.engines.base import Engine
from compiler.errors import BuildError
from compiler.oci.base import BaseImage, load_from_store, resolve_base
from compiler.backends.oci.config import BuiltLayer, image_config, image_manifest
from compiler.backends.oci.environment_layers import environment_layers
from compiler.backends.oci.layers import LayerOptions, copied_layers, user_layer
from compiler.oci.load import load_into_engine
from compiler.oci.outputs import StoredImage
from compiler.backends.oci.scan import scan_base
from compiler.oci.blobs import Blob
from compiler.oci.store import INDEX, MANIFEST, OciStore
from compiler.plan.types import ImagePlan
from compiler.platform import Platform
from compiler.reporter import Reporter


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image inside an index."""

    platform: str
    manifest_digest: str
    config_digest: str
    layers: tuple[BuiltLayer, ...]

    def as_dict(self) -> dict:
        return {"platform": self.platform, "manifest_digest": self.manifest_digest, "layers": _layers(self.layers)}


def _layers(layers: tuple[BuiltLayer, ...]) -> tuple[dict, ...]:
    return tuple({"kind": l.kind, "why": l.why, "digest": l.blob.digest, "size": l.blob.size} for l in layers)


@dataclass(frozen=True)
class OciBuiltImage:
    """What the OCI back end built: the stored image, and where it went."""

    image: str  # plan.tag
    content_tag: str
    manifest_digest: str
    config_digest: str
    image_id: str  # the engine's id after loading (the config digest), else the config digest
    loaded: bool
    reused: bool  # the engine already held this exact image
    size: int  # uncompressed size as the engine reports it, else the sum of the blobs
    seconds: float
    layers: tuple[BuiltLayer, ...]
    base_digest: str
    platforms: tuple[PlatformImage, ...] = ()  # an index: each platform's image, in the index's order

    @property
    def content_hash(self) -> str:
        return self.manifest_digest.split(":", 1)[1]

    def built(self) -> BuiltImage:
        """The result both back ends share."""
        return BuiltImage(
            builder="oci", image=self.image, image_id=self.image_id, content_tag=self.content_tag,
            content_hash=self.content_hash, reused=self.reused, size=self.size, seconds=self.seconds,
            manifest_digest=self.manifest_digest, loaded=self.loaded, layers=_layers(self.layers),
            platforms=tuple(p.as_dict() for p in self.platforms),
        )  # fmt: skip


def plan_base(plan: ImagePlan, store: OciStore, engine: Engine | None, log) -> BaseImage:
    """The plan's base image from the store, by the digest the plan was made with (resolved now
    when the plan has none); a base that changed since planning is an error, not a silent swap."""
    digest = plan.base.digest
    if digest is not None and digest.startswith("sha256:") and store.blobs.has(digest):
        return load_from_store(store, {"digest": digest}, plan.base.reference, "store")
    base = resolve_base(plan.base.reference, store, engine, log, plan.platform)
    if digest is not None and base.manifest_digest != digest:
        raise BuildError(f"base image {plan.base.reference} is now {base.manifest_digest[:19]}, not the "
                         f"{digest[:19]} the plan was made with; build again")  # fmt: skip
    return base


@dataclass(frozen=True)
class WrittenImage:
    """One platform's image written into the store: not yet named, not loaded."""

    plan: ImagePlan
    manifest: Blob
    config: Blob
    layers: tuple[BuiltLayer, ...]
    base_digest: str


def write_image(plan: ImagePlan, store: OciStore, engine: Engine | None, options: LayerOptions, reporter: Reporter) -> WrittenImage:
    """The plan's layers, config and manifest, as blobs in the store."""
    with reporter.stage("layers") as stage:
        base = plan_base(plan, store, engine, reporter.detail)
        reporter.detail(f"base {plan.base.reference} = {base.manifest_digest[:19]} (from the {base.source})")
        scan = scan_base(store, base)
        layers = [user_layer(plan, scan, store, options.epoch, options.compression, options.cache)]
        stage.update(layers[0].blob.size)
        layers.extend(environment_layers(plan, scan, store, options, reporter.detail, lambda layer: stage.advance(layer.blob.size),
                                         base=base))  # fmt: skip
        layers.extend(copied_layers(plan, store, options.epoch, lambda layer: stage.advance(layer.blob.size),
                                    options.digests, options.reuse, options.compression, options.cache))  # fmt: skip
        config = store.put_json(image_config(plan, base, layers, options.epoch))
        manifest = store.put_json(image_manifest(config.digest, config.size, base, layers))
        for layer in layers:
            reporter.detail(f"{layer.kind:<11} {layer.blob.size / 1e6:8.1f} MB  {layer.blob.digest[:19]}  {layer.why}")
        stage.note(f"{len(layers)} layers on {plan.base.reference} for {plan.platform}, manifest {manifest.digest[:19]}")
    return WrittenImage(plan, manifest, config, tuple(layers), base.manifest_digest)


def image_index(written: list[WrittenImage]) -> dict:
    """The OCI image index of several platforms' images, in the order built."""
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": w.manifest.digest, "size": w.manifest.size, "platform": w.plan.platform.oci()}
        for w in written]}  # fmt: skip


def build_oci_images(
    plans: tuple[ImagePlan, ...], store: OciStore, engine: Engine | None, options: LayerOptions, reporter: Reporter
) -> OciBuiltImage:
    """Write each plan's image; name one image, or the index of several, ``plans[0].tag``; load the
    host platform's image into the engine when one answers."""
    started = time.monotonic()
    written = [write_image(plan, store, engine, options, reporter) for plan in plans]
    top, media_type = written[0].manifest, MANIFEST
    if len(written) > 1:
        top, media_type = store.put_json(image_index(written)), INDEX
    tag = plans[0].tag
    repository = tag.rpartition(":")[0]
    content_tag = f"{repository}:sha256-{top.digest.split(':', 1)[1][:24]}"
    store.name([tag, content_tag], top, media_type=media_type)
    host = next((w for w in written if w.plan.platform == Platform.host()), None)
    image_id, loaded, reused = (host or written[0]).config.digest, False, False
    size = top.size + sum(w.manifest.size + w.config.size for w in written)  # descriptors' sizes: some blobs may be in the cache only
    size += sum({l.blob.digest: l.blob.size for w in written for l in w.layers}.values())
    if engine is not None and host is not None:
        with reporter.stage("load") as loading:
            stored = StoredImage.read(store, host.manifest.digest)
            if options.cache is not None:  # the engine needs the bytes of layers found in the cache
                options.cache.materialize(stored.blobs)
            reused = engine.image_info(host.config.digest) is not None
            image_id = load_into_engine(engine, store, stored, [tag, content_tag], plans[0].base.reference, reporter.detail, loading.update)
            info = engine.image_info(image_id)
            size, loaded = (info.size if info else size), True
    elif engine is not None:
        reporter.step(f"not loaded into the engine: it runs {Platform.host()}, the image is for {', '.join(str(p.platform) for p in plans)}")
    return OciBuiltImage(
        image=tag, content_tag=content_tag, manifest_digest=top.digest, config_digest=(host or written[0]).config.digest,
        image_id=image_id, loaded=loaded, reused=reused, size=size, seconds=time.monotonic() - started,
        layers=(host or written[0]).layers, base_digest=(host or written[0]).base_digest,
        platforms=tuple(PlatformImage(str(w.plan.platform), w.manifest.digest, w.config.digest, w.layers) for w in written)
        if len(written) > 1 else (),
    )  # fmt: skip


def build_oci_image(
    plan: ImagePlan, store: OciStore, engine: Engine | None, options: LayerOptions, reporter: Reporter
) -> OciBuiltImage:
    """One plan's image (the single-platform build)."""
    return build_oci_images((plan,), store, engine, options, reporter)
