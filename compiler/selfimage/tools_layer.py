"""The Debian tools pkgc runs at build time with no engine (skopeo), as one layer on the base image.

The base's own mmdebstrap recipe is bootstrapped again with the tools added (same mirror, suite,
excludes, stub CA package and SOURCE_DATE_EPOCH), and the layer holds what that tree adds or changes
on top of the base's layers (``rootfs_diff``): the tools, their libraries, dpkg's status and
``/etc/containers`` (skopeo's policy). No CA bundle enters: the recipe's ``ca-certificates`` stub
stays. The layer is remembered in the store by its inputs (the recipe, the tools, the base's
manifest digest, the compression), so the bootstrap runs once per base."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

from compiler.baseimages.bootstrap import bootstrap_rootfs
from compiler.baseimages.recipes import BaseImageRecipe
from compiler.cache.owner import staging_dir
from compiler.errors import BuildError
from compiler.oci.base import BaseImage
from compiler.oci.compress import Compression, cache_key, open_layer
from compiler.oci.layer import LayerBlob, write_layer
from compiler.oci.store import OciStore
from compiler.selfimage.records import read_record, write_record
from compiler.selfimage.rootfs_diff import Fact, clean, diff_entries, tree_facts

TOOLS = ("skopeo",)  # registry pushes and pulls (compiler/oci/skopeo.py); never an engine, never mmdebstrap
FORMAT = 1  # bump when the layer's rules change

Log = Callable[[str], None]


def tools_recipe(base: BaseImageRecipe, tools: tuple[str, ...] = TOOLS) -> BaseImageRecipe:
    """The base's recipe with ``tools`` installed too."""
    if base.bootstrap is None:
        raise BuildError(f"base image recipe {base.name} is not an mmdebstrap recipe: pkgc's image needs one")
    bootstrap = dataclasses.replace(base.bootstrap, packages=base.bootstrap.packages + tuple(tools))
    content = json.dumps({"base": base.content, "tools": list(tools)}, sort_keys=True)
    return dataclasses.replace(base, name=f"{base.name}-pkgc-tools", bootstrap=bootstrap, content=content)


def base_facts(store: OciStore, base: BaseImage) -> dict[str, Fact]:
    """The base image's file system (its layers applied in order, whiteouts honoured) as facts."""
    facts: dict[str, Fact] = {}
    for layer in base.layers:
        with open(store.blobs.path(layer["digest"]), "rb") as raw, open_layer(raw, layer.get("mediaType", "")) as tar:
            found = tree_facts(tar)
        for path in [p for p in found if p.rpartition("/")[2].startswith(".wh.")]:
            folder, _, name = path.rpartition("/")
            if name == ".wh..wh..opq":  # the folder's earlier content is gone, the folder stays
                doomed = [p for p in facts if p.startswith(folder + "/")]
            else:
                gone = f"{folder}/{name[4:]}".lstrip("/")
                doomed = [p for p in facts if p == gone or p.startswith(gone + "/")]
            for known in doomed:
                del facts[known]
            del found[path]
        facts.update(found)
    return facts


def tools_layer(
    store: OciStore, base: BaseImage, recipe: BaseImageRecipe, epoch: int, compression: Compression, log: Log,
    tools: tuple[str, ...] = TOOLS,
) -> LayerBlob:
    """The layer adding ``tools`` to ``base`` (which ``recipe`` built), from the store when made before."""
    key = hashlib.sha256(json.dumps([FORMAT, recipe.content, list(tools), base.manifest_digest, epoch,
                                     cache_key(compression)]).encode()).hexdigest()  # fmt: skip
    cached = read_record(store, f"selfimage-tools-{key}")
    if cached is not None:
        log(f"tools layer ({', '.join(tools)}) reused: {cached.digest[:19]}")
        return cached
    with_tools = tools_recipe(recipe, tools)
    with staging_dir(store.root, "pkgc-selfimage-") as staging:
        rootfs = bootstrap_rootfs(with_tools, log, staging)
        files = staging / "files"
        files.mkdir()
        with open(rootfs, "rb") as fh:
            entries = diff_entries(base_facts(store, base), fh, files)
        rootfs.unlink()
        log(f"tools layer: {len(entries)} entries on {base.reference} ({', '.join(sorted({clean(e.path).split('/')[0] for e in entries}))})")
        blob = write_layer(entries, store.blobs, epoch, compression=compression)
    write_record(store, f"selfimage-tools-{key}", blob)
    return blob
