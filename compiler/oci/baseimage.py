"""``pkgc base-image build`` into pkgc's OCI store: an mmdebstrap recipe's rootfs for each platform
as a one-layer image, with the recipe's ENV, CMD and ``io.pkgc.base.*`` labels (the same metadata
``docker import`` gives it), gathered in one OCI image index (one manifest per platform) named
``pkgc/base-<name>:<digest[:12]>`` and ``:latest``. A platform the index already holds is kept (the
build is idempotent per recipe digest and platform); when an engine answers, the host's image is
``docker load``ed into it from the store, so the engine's image of the name is the store's (same
config digest, same id): a build that asks the engine and one that reads the store use one base."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

from compiler.baseimages.bootstrap import bootstrap_rootfs
from compiler.baseimages.build import BaseImageResult, build_base_image, check_python, image_labels
from compiler.baseimages.recipes import BaseImageRecipe, load_recipe
from compiler.engines.base import Engine, LogSink
from compiler.errors import BuildError, ResolveError
from compiler.oci.base import compress_layer, resolve_base
from compiler.oci.blobs import Blob
from compiler.oci.load import load_into_engine as load_oci_image
from compiler.oci.outputs import StoredImage
from compiler.oci.store import timestamp
from compiler.oci.store import CONFIG, INDEX, MANIFEST, OciStore
from compiler.platform import Platform


def rootfs_config(recipe: BaseImageRecipe, diff_id: str, platform: Platform | None = None) -> dict:
    epoch = recipe.bootstrap.source_date_epoch if recipe.bootstrap else 0
    config: dict = {"Env": [f"{k}={v}" for k, v in recipe.config.env], "Labels": image_labels(recipe)}
    if recipe.config.cmd:
        config["Cmd"] = list(recipe.config.cmd)
    return {
        "created": timestamp(epoch), **(platform or Platform.host()).oci(), "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": timestamp(epoch), "created_by": f"pkgc base-image build {recipe.name} (mmdebstrap)"}],
    }  # fmt: skip


def store_rootfs(recipe: BaseImageRecipe, rootfs: Path, store: OciStore, platform: Platform | None = None) -> Blob:
    """Write ``rootfs`` (a tar) as the recipe's ``platform`` image (default: the host's); its manifest."""
    with open(rootfs, "rb") as fh:
        layer = compress_layer(store, fh)
    config = store.put_json(rootfs_config(recipe, layer.diff_id, platform))
    return store.put_json({"schemaVersion": 2, "mediaType": MANIFEST,
                           "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size},
                           "layers": [layer.descriptor()]})  # fmt: skip


def stored_platforms(store: OciStore, ref: str) -> dict[Platform, dict]:
    """The images the store holds under ``ref``, by platform: an index's entries, or one image's
    (its config states its platform); only those whose blobs are all here."""
    entry = store.find(ref)
    if entry is None or not store.blobs.has(entry["digest"]):
        return {}
    if entry.get("mediaType") != INDEX:
        entries = [entry]
    else:
        entries = [m for m in store.read_json(entry["digest"]).get("manifests") or [] if isinstance(m, dict)]
    found: dict[Platform, dict] = {}
    for item in entries:
        if not store.blobs.has(str(item.get("digest"))):
            continue
        manifest = store.read_json(item["digest"])
        config = manifest.get("config") or {}
        blobs = [config, *(manifest.get("layers") or [])]
        if not all(isinstance(x, dict) and store.blobs.has(str(x.get("digest"))) for x in blobs):
            continue
        platform = Platform.from_oci(item.get("platform") or store.read_json(config["digest"]))
        if platform is not None:
            found.setdefault(platform, {"mediaType": MANIFEST, "digest": item["digest"], "size": item["size"]})
    return found


def name_index(store: OciStore, recipe: BaseImageRecipe, images: dict[Platform, dict]) -> Blob:
    """Name the index of ``images`` (sorted by platform, so equal images give one digest) as the recipe's."""
    manifests = [{**images[p], "platform": p.oci()} for p in sorted(images)]
    index = store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})
    store.name([recipe.image_ref, recipe.latest_ref], index, media_type=INDEX)
    return index


def build_base_image_in_store(name: str, store: OciStore, log: LogSink, *, force: bool = False,
                              platforms: Iterable[Platform] = (), engine: Engine | None = None) -> BaseImageResult:  # fmt: skip
    """``pkgc base-image build`` into the store, for ``platforms`` (default: the host's); the host's
    image is also imported into ``engine`` when given. Idempotent per recipe digest and platform."""
    recipe = load_recipe(name)
    host = Platform.host()
    wanted = tuple(dict.fromkeys(platforms)) or (host,)
    if recipe.kind != "mmdebstrap":
        return _registry_recipe(recipe, wanted, engine, log, force)
    images = stored_platforms(store, recipe.image_ref)
    if engine is not None and host not in images and engine.image_info(recipe.image_ref) is not None:
        base = resolve_base(recipe.image_ref, store, engine, log)  # the engine's: the index keeps every platform there is
        images[host] = {"mediaType": MANIFEST, "digest": base.manifest_digest, "size": store.blobs.path(base.manifest_digest).stat().st_size}
    missing = [p for p in wanted if force or p not in images]
    for platform in wanted:
        if platform not in missing:
            log(f"base image {recipe.image_ref} for {platform} is up to date in {store.root}")
    with tempfile.TemporaryDirectory(prefix="pkgc-base-") as tmp:
        for platform in missing:
            rootfs = bootstrap_rootfs(recipe, log, Path(tmp), platform)
            log(f"writing the {rootfs.stat().st_size // (1 << 20)} MiB {platform} rootfs into {store.root} as {recipe.image_ref}")
            manifest = store_rootfs(recipe, rootfs, store, platform)
            images[platform] = {"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size}
            rootfs.unlink()
    index = name_index(store, recipe, images)
    image_id = index.digest
    if engine is not None and host in images:
        image_id = engine_holds_the_stored(recipe, store, images[host], engine, log)
    return BaseImageResult(recipe.name, recipe.image_ref, image_id, recipe.python or None, built=bool(missing),
                           platforms=tuple(str(p) for p in sorted(images)))  # fmt: skip


def engine_holds_the_stored(recipe: BaseImageRecipe, store: OciStore, entry: dict, engine: Engine, log: LogSink) -> str:
    """Make the engine's image of the recipe the store's host image (``docker load`` of it, when the
    engine holds another image under the name or none): one base whether a build asks the engine or
    the store. Its engine id (the config digest)."""
    image = StoredImage.read(store, entry["digest"])
    info = engine.image_info(recipe.image_ref)
    if info is None or info.id != image.config_digest:
        log(f"loading {recipe.image_ref} from {store.root} into the engine (it held {'another image' if info else 'none'} of that name)")
        load_oci_image(engine, store, image, [recipe.image_ref, recipe.latest_ref], recipe.image_ref, log)
        check_python(recipe, engine, recipe.image_ref)
    else:
        latest = engine.image_info(recipe.latest_ref)
        if latest is None or latest.id != info.id:
            engine.tag(info.id, recipe.latest_ref)
    return image.config_digest


def _registry_recipe(recipe: BaseImageRecipe, wanted: tuple[Platform, ...], engine: Engine | None, log: LogSink,
                     force: bool) -> BaseImageResult:  # fmt: skip
    """A registry recipe: the host's platform only, into the engine as without ``--platform``."""
    other = next((p for p in wanted if p != Platform.host()), None)
    if other is not None:
        raise ResolveError(f"base image '{recipe.name}' comes from a registry ({recipe.image}): pkgc builds it for "
                           f"{Platform.host()} only; for {other} name a registry index with --base-image docker://HOST/REPO:TAG")  # fmt: skip
    if engine is None:
        raise BuildError(f"base image '{recipe.name}' comes from a registry ({recipe.image}); with no engine, pkgc can build "
                         "only mmdebstrap recipes (try 'debian-bookworm')")  # fmt: skip
    return build_base_image(recipe.name, engine, log, force=force)
