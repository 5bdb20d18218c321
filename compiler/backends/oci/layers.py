"""The layers pkgc adds on the base, in the plan's order: user, environment, runtime, model, inputs, code, sbom.

Each comes from the ImagePlan: the user from its uid (appended to the base's passwd/group), the
environment (venv or conda) assembled on the host (cached by the lock's content), the others from the plan's
copies of its context files. Model layers are stored uncompressed: weights rarely compress."""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compiler.envbuild.libraries import Need, fix_for, missing_from_base
from compiler.errors import BuildError, MissingLibraries
from compiler.backends.oci.config import BuiltLayer
from compiler.oci.compress import Compression, cache_key
from compiler.oci.layer import Entry, write_layer
from compiler.backends.oci.model_layers import at_stable_path, layer_key, model_layers
from compiler.backends.oci.scan import BaseScan
from compiler.oci.store import OciStore
from compiler.plan.types import Copy, ImagePlan
from compiler.workspace.digest_cache import DigestCache
from compiler.workspace.walk import skip_caches, walk

if TYPE_CHECKING:
    from compiler.cache.registry_cache import RegistryCache


@dataclass(frozen=True)
class LayerOptions:
    epoch: int  # mtime of every entry (SOURCE_DATE_EPOCH or 0)
    python: str  # the image's Python major.minor
    bytecode: bool = True
    reuse: bool = True  # reuse a cached environment layer (--no-cache: assemble it again)
    pyc_cache: Path | None = None  # compiled files kept by source, in-image path and interpreter
    cache_dir: Path | None = None  # pkgc's cache: where the base is unpacked for its Python to compile byte-code
    allow_missing: frozenset[str] = frozenset()  # sonames the environment may need that nothing here provides
    digests: DigestCache | None = None  # remembered file digests: unchanged model files are not read again
    compression: Compression = "gzip"  # of every layer but the model's (--compression)
    cache: "RegistryCache | None" = None  # --cache REGISTRY/REPO: the shared build cache (compiler/cache/registry_cache.py)


def copied_key(kind: str, entries: list[Entry], epoch: int, compression: Compression, digests: DigestCache | None = None) -> str:
    """A compressed layer of given entries (user, runtime, code, ...), keyed by what it holds and how
    it is compressed (the shared build cache's key; local builds write these small layers again)."""
    return hashlib.sha256(json.dumps([kind, layer_key(entries, epoch, digests), cache_key(compression)]).encode()).hexdigest()


def user_layer(
    plan: ImagePlan, scan: BaseScan, store: OciStore, epoch: int, compression: Compression = "gzip", cache: "RegistryCache | None" = None
) -> BuiltLayer:
    """The non-root user: its passwd/group lines appended to the base's, and its home folder."""
    user, uid = plan.config.user, plan.config.uid
    home = f"/home/{user}"
    passwd, group = scan.passwd, scan.group
    if not any(line.split(":")[0] == user for line in passwd.splitlines()):
        passwd = _append(passwd, f"{user}:x:{uid}:{uid}::{home}:/usr/sbin/nologin")
    if not any(line.split(":")[0] == user for line in group.splitlines()):
        group = _append(group, f"{user}:x:{uid}:")
    entries = [
        Entry("etc/passwd", "file", 0o644, data=passwd.encode()),
        Entry("etc/group", "file", 0o644, data=group.encode()),
        Entry(home.lstrip("/"), "dir", 0o750, uid=uid, gid=uid),
    ]
    blob = reused_or_written(cache, copied_key("user", entries, epoch, compression),
                             lambda: write_layer(entries, store.blobs, epoch, compression=compression))  # fmt: skip
    layer = plan.layer("user")
    return BuiltLayer("user", layer.why if layer else f"user {user} ({uid})", blob)


def reused_or_written(cache: "RegistryCache | None", key: str, write: Callable, reuse: bool = True):
    """``write()`` the layer, or (with a shared build cache) take the one cached under ``key``."""
    if cache is None:
        return write()
    from compiler.cache.registry_cache import reused_or_written as through_cache

    return through_cache(cache, key, write, reuse)


def _append(text: str, line: str) -> str:
    return (text if not text or text.endswith("\n") else text + "\n") + line + "\n"


def check_libraries(
    plan: ImagePlan, scan: BaseScan, needs: list[Need] | None, allowed: frozenset[str], python: str | None = None
) -> None:
    """Every shared library the environment needs is in it, in the base, or the GPU driver's: else
    stop now, naming the package, the library and the fix (the server would die at start-up)."""
    missing = [n for n in missing_from_base(needs or [], frozenset(scan.libraries), python) if n.soname not in allowed]
    if missing:
        raise MissingLibraries([
            f"{', '.join(n.packages)} needs {n.soname} ({n.example}), which neither the environment nor the base "
            f"image {plan.base.reference} provides: {fix_for(n.soname)}" for n in missing
        ])  # fmt: skip


def copy_entries(plan: ImagePlan, copy: Copy) -> list[Entry]:
    """The entries one COPY of context files puts at its destination; folders are read through the
    same walker as the Docker context (regular files and folders only, links inside the tree
    dereferenced, caches skipped), so both back ends package the same content."""
    entries: list[Entry] = []
    for item in plan.files:
        if item.dest != copy.src and not item.dest.startswith(copy.src + "/"):
            continue
        dest = copy.dest + item.dest[len(copy.src):]
        if item.data is not None:
            entries.append(Entry(dest, "file", 0o755 if item.executable else 0o644, data=item.data))
            continue
        assert item.source is not None
        for found in walk(item.source, ignore=skip_caches):
            path = f"{dest}/{found.rel}" if found.rel else dest
            if found.is_dir:
                entries.append(Entry(path, "dir", 0o755))
            else:
                entries.append(Entry(path, "file", 0o755 if item.executable or found.executable else 0o644, source=found.path))
    if not entries:
        raise BuildError(f"the plan copies {copy.src} but has no such context file")
    return entries


def copied_layers(
    plan: ImagePlan, store: OciStore, epoch: int, on_layer: Callable[[BuiltLayer], None] = lambda _layer: None,
    digests: DigestCache | None = None, reuse: bool = True, compression: Compression = "gzip", cache: "RegistryCache | None" = None,
) -> list[BuiltLayer]:
    """The plan's layers of context copies (runtime, model, inputs, code, sbom), in the plan's order.
    The model's files become several layers (``model_layers``: each large file alone, remembered by
    content, uncompressed). ``on_layer`` hears each as it is written or reused."""
    layers = []
    for layer in plan.layers:
        if layer.kind in ("user", "environment"):
            continue
        entries = [e for copy in layer.copies for e in copy_entries(plan, copy)]
        if layer.kind == "model":
            model_dir = posixpath.dirname(layer.copies[0].dest)  # the copy is <model dir>/<model's root>
            blobs = model_layers(at_stable_path(entries, model_dir), store, epoch, digests, reuse=reuse, cache=cache)
        else:
            key = copied_key(layer.kind, entries, epoch, compression, digests)
            # the SBOM's layer is written here even when cached: the attestations read the SBOM from it
            blobs = [reused_or_written(cache, key, lambda: write_layer(entries, store.blobs, epoch, compression=compression),
                                       reuse and layer.kind != "sbom")]  # fmt: skip
        for blob in blobs:
            layers.append(BuiltLayer(layer.kind, layer.why, blob))
            on_layer(layers[-1])
    return layers
