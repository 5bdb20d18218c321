"""``pkgc base-image build`` into pkgc's OCI store: an mmdebstrap recipe's rootfs for each platform
as a one-layer image, with the recipe's ENV, CMD and ``io.pkgc.base.*`` labels (the same metadata
``docker import`` gives it), gathered in one OCI image index (one manifest per platform) named
``pkgc/base-<name>:<digest[:12]>`` and ``:latest``. A platform the index already holds is kept (the
build is idempotent per recipe digest and platform); the host's image is also loaded into the
engine, as without ``--platform``, when one answers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

from compiler.baseimages.bootstrap import bootstrap_rootfs
from compiler.baseimages.build import BaseImageResult, image_labels, load_into_engine
from compiler.baseimages.recipes import BaseImageRecipe, load_recipe
from compiler.engines.base import Engine, LogSink
from compiler.errors import BuildError
from compiler.oci.base import compress_layer
from compiler.oci.blobs import Blob
from compiler.oci.config import timestamp
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
        if not store.blobs.has(str(config.get("digest"))) or not all(store.blobs.has(str(x.get("digest"))) for x in manifest.get("layers") or []):
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
    wanted = tuple(dict.fromkeys(platforms)) or (Platform.host(),)
    images = stored_platforms(store, recipe.image_ref)
    missing = [p for p in wanted if force or p not in images]
    if missing and recipe.kind != "mmdebstrap":
        raise BuildError(f"base image '{name}' comes from a registry ({recipe.image}); pkgc builds only mmdebstrap "
                         "recipes into its store (try 'debian-bookworm')")  # fmt: skip
    for platform in wanted:
        if platform not in missing:
            log(f"base image {recipe.image_ref} for {platform} is up to date in {store.root}")
    with tempfile.TemporaryDirectory(prefix="pkgc-base-") as tmp:
        for platform in missing:
            rootfs = bootstrap_rootfs(recipe, log, Path(tmp), platform)
            log(f"writing the {rootfs.stat().st_size // (1 << 20)} MiB {platform} rootfs into {store.root} as {recipe.image_ref}")
            manifest = store_rootfs(recipe, rootfs, store, platform)
            images[platform] = {"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size}
            if engine is not None and platform == Platform.host() and engine.image_info(recipe.image_ref) is None:
                load_into_engine(recipe, rootfs, engine, log)
            rootfs.unlink()
    host = Platform.host()
    if engine is not None and host in wanted and host not in missing and engine.image_info(recipe.image_ref) is None:
        log(f"the engine lacks {recipe.image_ref}: building it there too")
        with tempfile.TemporaryDirectory(prefix="pkgc-base-") as tmp:
            load_into_engine(recipe, bootstrap_rootfs(recipe, log, Path(tmp), host), engine, log)
    index = name_index(store, recipe, images)
    return BaseImageResult(recipe.name, recipe.image_ref, index.digest, recipe.python or None, built=bool(missing),
                           platforms=tuple(str(p) for p in sorted(images)))  # fmt: skip
