"""``pkgc base-image build`` with no engine: an mmdebstrap recipe's rootfs imported straight into
pkgc's OCI store as a one-layer image, with the recipe's ENV, CMD and ``io.pkgc.base.*`` labels
(the same metadata ``docker import`` gives it), named ``pkgc/base-<name>:<digest[:12]>`` and ``:latest``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from compiler.baseimages.bootstrap import bootstrap_rootfs
from compiler.baseimages.build import BaseImageResult, image_labels
from compiler.baseimages.recipes import BaseImageRecipe, load_recipe
from compiler.engines.base import LogSink
from compiler.errors import BuildError
from compiler.oci.base import compress_layer
from compiler.oci.config import timestamp
from compiler.oci.store import CONFIG, MANIFEST, OciStore


def rootfs_config(recipe: BaseImageRecipe, diff_id: str) -> dict:
    epoch = recipe.bootstrap.source_date_epoch if recipe.bootstrap else 0
    config: dict = {"Env": [f"{k}={v}" for k, v in recipe.config.env], "Labels": image_labels(recipe)}
    if recipe.config.cmd:
        config["Cmd"] = list(recipe.config.cmd)
    return {
        "created": timestamp(epoch), "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": timestamp(epoch), "created_by": f"pkgc base-image build {recipe.name} (mmdebstrap)"}],
    }  # fmt: skip


def store_rootfs(recipe: BaseImageRecipe, rootfs: Path, store: OciStore) -> str:
    """Write ``rootfs`` (a tar) as the recipe's image; return its manifest digest."""
    with open(rootfs, "rb") as fh:
        layer = compress_layer(store, fh)
    config = store.put_json(rootfs_config(recipe, layer.diff_id))
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST,
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size},
                               "layers": [layer.descriptor()]})  # fmt: skip
    store.name([recipe.image_ref, recipe.latest_ref], manifest)
    return manifest.digest


def build_base_image_in_store(name: str, store: OciStore, log: LogSink, *, force: bool = False) -> BaseImageResult:
    """The no-engine ``pkgc base-image build``: idempotent per recipe digest, as with an engine."""
    recipe = load_recipe(name)
    existing = None if force else store.find(recipe.image_ref)
    if existing is not None and store.blobs.has(existing["digest"]):
        log(f"base image {recipe.image_ref} is up to date in {store.root}")
        store.name([recipe.latest_ref], _blob(store, existing["digest"]))
        return BaseImageResult(recipe.name, recipe.image_ref, existing["digest"], recipe.python or None, built=False)
    if recipe.kind != "mmdebstrap":
        raise BuildError(f"base image '{name}' comes from a registry ({recipe.image}); with no engine, pkgc can build "
                         "only mmdebstrap recipes (try 'debian-bookworm')")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pkgc-base-") as tmp:
        rootfs = bootstrap_rootfs(recipe, log, Path(tmp))
        log(f"writing the {rootfs.stat().st_size // (1 << 20)} MiB rootfs into {store.root} as {recipe.image_ref}")
        digest = store_rootfs(recipe, rootfs, store)
    return BaseImageResult(recipe.name, recipe.image_ref, digest, recipe.python or None, built=True)


def _blob(store: OciStore, digest: str):
    from compiler.oci.blobs import Blob

    return Blob(digest, store.blobs.path(digest).stat().st_size)
