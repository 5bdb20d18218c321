"""Build ``pkgc/pkgc:<version>`` (and ``:latest``) with pkgc's own OCI writer: on the offline Debian
base, a tools layer (skopeo), the runtime venv, pkgc's source and the user layer, written into
pkgc's OCI store and, when an engine answers, loaded into it.

    base (pkgc/base-debian-bookworm) -> tools (skopeo) -> venv (locked deps) -> pkgc source -> user
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from compiler.baseimages.recipes import load_recipe
from compiler.engines.base import Engine
from compiler.envbuild.venv import VenvTarget
from compiler.errors import BuildError
from compiler.oci.base import resolve_base
from compiler.oci.compress import Compression
from compiler.oci.layer import Entry, LayerBlob, write_layer
from compiler.oci.load import load_into_engine
from compiler.oci.outputs import StoredImage
from compiler.backends.oci.scan import scan_base
from compiler.oci.store import CONFIG, MANIFEST, OciStore
from compiler.selfimage.config import PREFIX, UID, WORK, ImageLayer, image_config, user_lines
from compiler.selfimage.runtime import Project, runtime_lock, runtime_strategy, source_layer, venv_layer
from compiler.selfimage.tools_layer import TOOLS, tools_layer

BASE_RECIPE = "debian-bookworm"
REPOSITORY = "pkgc/pkgc"
Log = Callable[[str], None]


@dataclass(frozen=True)
class SelfImage:
    """What was built: the tags, the manifest and config digests, the layers, and where it went."""

    tags: tuple[str, ...]
    manifest_digest: str
    config_digest: str
    layers: tuple[ImageLayer, ...]
    lock: str
    lock_status: str
    loaded: bool
    seconds: float

    def to_json(self) -> dict:
        return {**asdict(self), "layers": [asdict(layer) for layer in self.layers], "seconds": round(self.seconds, 1)}


def _layer(kind: str, why: str, blob: LayerBlob) -> ImageLayer:
    return ImageLayer(kind, why, blob.digest, blob.size, blob.diff_id, blob.media_type)


def build_self_image(
    project: Project, store: OciStore, cache_dir: Path, engine: Engine | None, lock_path: Path, log: Log,
    compression: Compression = "gzip", load: bool = True,
) -> SelfImage:
    """Build pkgc's image from the checkout ``project`` into ``store`` (the base from ``engine`` when the
    store lacks it), and load it into ``engine`` when there is one and ``load``."""
    started = time.monotonic()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or 0)
    recipe = load_recipe(BASE_RECIPE)
    base = resolve_base(recipe.latest_ref, store, engine, log)
    if (base.labels.get("io.pkgc.base.recipe-digest") or recipe.digest) != recipe.digest:
        raise BuildError(f"{recipe.latest_ref} was built from another recipe than base-images/{BASE_RECIPE}; "
                         f"run 'pkgc base-image build {BASE_RECIPE}' first")  # fmt: skip
    scan = scan_base(store, base)
    home = scan.python_home(recipe.python)
    if home is None:
        raise BuildError(f"{recipe.latest_ref} has no python{recipe.python}")
    target = VenvTarget(PREFIX, recipe.python, home)
    lock, status = runtime_lock(runtime_strategy(project, recipe.python, recipe.glibc or None), lock_path, cache_dir, log)
    log(f"runtime lock {status}: {lock_path} ({len(lock.packages)} packages)")
    layers = [
        _layer("tools", f"Debian packages pkgc runs with no engine: {', '.join(TOOLS)}",
               tools_layer(store, base, recipe, epoch, compression, log)),
        _layer("environment", f"pkgc's runtime dependencies ({len(lock.packages)} locked wheels) at {PREFIX}",
               venv_layer(store, lock, cache_dir, target, epoch, compression, log)),
        _layer("source", f"pkgc {project.version} in the venv, with its templates and recipes",
               source_layer(store, project, target, epoch, compression, log)),
        _layer("user", f"user {UID} and its writable folder {WORK}", user_layer(store, scan.passwd, scan.group, epoch, compression)),
    ]  # fmt: skip
    config = store.put_json(image_config(base.config, layers, project.version, epoch))
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST,
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size},
                               "layers": base.layers + [layer.descriptor() for layer in layers]})  # fmt: skip
    tags = (f"{REPOSITORY}:{project.version}", f"{REPOSITORY}:latest")
    store.name(list(tags), manifest)
    for layer in layers:
        log(f"{layer.kind:<11} {layer.size / 1e6:7.1f} MB  {layer.digest[:19]}  {layer.why}")
    loaded = engine is not None and load
    if loaded:
        load_into_engine(engine, store, StoredImage.read(store, manifest.digest), list(tags), recipe.latest_ref, log)
    return SelfImage(tags, manifest.digest, config.digest, tuple(layers), str(lock_path), status, loaded,
                     time.monotonic() - started)  # fmt: skip


def user_layer(store: OciStore, passwd: str, group: str, epoch: int, compression: Compression) -> LayerBlob:
    """pkgc's user in ``/etc/passwd`` and ``/etc/group``, and ``WORK`` owned by it."""
    passwd, group = user_lines(passwd, group)
    entries = [Entry("etc/passwd", "file", 0o644, data=passwd.encode()), Entry("etc/group", "file", 0o644, data=group.encode()),
               Entry(WORK.lstrip("/"), "dir", 0o755, uid=UID, gid=UID)]  # fmt: skip
    return write_layer(entries, store.blobs, epoch, compression=compression)
