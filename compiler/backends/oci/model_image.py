"""The model as its own OCI image: the files a ``readonly_mount`` package expects in its model dir.

The image's root is the model dir: it holds ``<root>/...`` (the model's file or folder, as a copy-mode
build puts it at ``<model_dir>/<root>``), so mounting the image at the package's model dir (a
Kubernetes image volume, ``podman run --mount type=image``) gives the package exactly its model.

Its layers are the model layers of a copy-mode package (``model_layers``: one plain tar per large
file, one for the small files, each remembered by what it holds), so a new model version that keeps
a weight file keeps its layer without reading it. Nothing per-build goes in (fixed mtime, owner,
modes, ``created``), so the same model gives the same manifest digest; the image is also cached in
pkgc's store by that content.

Its config names the package's platform: a node unpacks an image only for a platform it runs
(containerd's unpacker refuses an amd64 config on an arm64 node, even for files alone). A package
built for several platforms gets an image index of one manifest per platform, all sharing the same
layers, so every node pulls the model by the one digest the package's label names.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.oci.store import timestamp
from compiler.oci.blobs import Blob
from compiler.oci.layer import Entry, LayerBlob
from compiler.backends.oci.model_layers import LARGE_FILE, model_layers
from compiler.oci.aligned_header import LAYOUT as PLAIN_LAYOUT
from compiler.oci.store import CONFIG, INDEX, MANIFEST, OciStore
from compiler.platform import AMD64, Platform
from compiler.workspace.digest_cache import DigestCache
from compiler.workspace.walk import skip_caches, walk

FORMAT = 3  # bump when the content rules change (invalidates cached model images)
DEFAULT_PLATFORMS = (AMD64,)  # for a caller that names none; a build passes its own platforms
MODEL_ROOT = "io.pkgc.model.root"


@dataclass(frozen=True)
class ModelSource:
    """The model version whose files become the image: the workspace tree ``tree_path/root_name``."""

    name: str
    version: str
    type: str
    tree_digest: str  # 64 hex digits
    tree_path: Path
    root_name: str


@dataclass(frozen=True)
class ModelImage:
    """A model image in pkgc's store, named ``reference`` there."""

    reference: str  # pkgc/model-<name>:<version>
    manifest_digest: str
    config_digest: str  # "" when the image is an index of several platforms
    layers: int
    size: int  # bytes of config and layer blobs
    root_name: str
    reused: bool = False

    @property
    def tag(self) -> str:
        return self.reference.rpartition(":")[2]

    def as_dict(self) -> dict:
        return {"reference": self.reference, "manifest_digest": self.manifest_digest, "layers": self.layers,
                "size_bytes": self.size, "root": self.root_name, "reused": self.reused}  # fmt: skip


def model_reference(name: str, version: str) -> str:
    """``pkgc/model-<name>:<version>``, both made valid for an image reference."""
    repository = "pkgc/model-" + (re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model")
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", version)[:128].lstrip(".-") or "latest"
    return f"{repository}:{tag}"


def model_labels(model: ModelSource) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": f"{model.name}:{model.version}",
        "org.opencontainers.image.description": f"model {model.name}:{model.version}: mount it read-only at the package's model dir",
        "io.pkgc.model.name": model.name,
        "io.pkgc.model.version": model.version,
        "io.pkgc.model.type": model.type,
        "io.pkgc.model.tree": f"sha256:{model.tree_digest}",
        MODEL_ROOT: model.root_name,
    }


def model_entries(model: ModelSource) -> list[Entry]:
    """What a copy-mode build puts at ``<model_dir>/<root>`` (the same walker), placed at ``<root>``."""
    entries = []
    for found in walk(model.tree_path / model.root_name, ignore=skip_caches):
        path = f"{model.root_name}/{found.rel}" if found.rel else model.root_name
        if found.is_dir:
            entries.append(Entry(path, "dir", 0o755))
        else:
            entries.append(Entry(path, "file", 0o755 if found.executable else 0o644, source=found.path))
    return entries


def image_config(model: ModelSource, blobs: list[LayerBlob], epoch: int, platform: Platform = DEFAULT_PLATFORMS[0]) -> dict:
    """A real image config (``platform``: the package's, rootfs diff_ids) so that containerd, CRI-O
    and podman mount it on the nodes that run the package."""
    created = timestamp(epoch)
    return {
        "created": created,
        **platform.oci(),  # architecture, os (and arm64's variant)
        "config": {"Labels": model_labels(model)},
        "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in blobs]},
        "history": [{"created": created, "created_by": f"pkgc: model {model.name}:{model.version} layer {i + 1}"}
                    for i in range(len(blobs))],  # fmt: skip
    }


def _cache_key(model: ModelSource, epoch: int, large: int, platforms: tuple[Platform, ...]) -> str:
    facts = [FORMAT, PLAIN_LAYOUT, model.name, model.version, model.type, model.tree_digest, model.root_name, epoch, large,
             [str(p) for p in platforms]]  # fmt: skip
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


def _manifests(store: OciStore, digest: str) -> list[dict]:
    """The image manifests ``digest`` names: itself, or its index's entries."""
    document = store.read_json(digest)
    if document.get("mediaType") == INDEX:
        return [store.read_json(entry["digest"]) for entry in document["manifests"]]
    return [document]


def _cached(store: OciStore, key: str) -> str | None:
    path = store.root / "model-images" / f"{key}.json"
    try:
        digest = json.loads(path.read_text())["manifest"]
        manifests = _manifests(store, digest)
        needed = [d for m in manifests for d in (m["config"]["digest"], *(layer["digest"] for layer in m["layers"]))]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return digest if all(store.blobs.has(d) for d in needed) else None


def _write_image(store: OciStore, model: ModelSource, blobs: list[LayerBlob], epoch: int, platforms: tuple[Platform, ...]) -> Blob:
    """One manifest per platform over the same layers; an index of them when there are several."""
    entries = []
    for platform in platforms:
        config = store.put_json(image_config(model, blobs, epoch, platform))
        manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST,
                                   "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size},
                                   "layers": [b.descriptor() for b in blobs]})  # fmt: skip
        entries.append({"mediaType": MANIFEST, "digest": manifest.digest, "size": manifest.size, "platform": platform.oci()})
    if len(entries) == 1:
        return Blob(entries[0]["digest"], entries[0]["size"])
    return store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})


def _remember(store: OciStore, key: str, digest: str) -> None:
    folder = store.root / "model-images"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.json.partial"
    tmp.write_text(json.dumps({"manifest": digest}))
    tmp.replace(folder / f"{key}.json")


def build_model_image(
    model: ModelSource, store: OciStore, epoch: int = 0, large: int = LARGE_FILE, reuse: bool = True,
    digests: DigestCache | None = None, platforms: tuple[Platform, ...] = DEFAULT_PLATFORMS,
) -> ModelImage:
    """Write (or find) the model image for ``platforms`` (the package's) in ``store`` and name it
    ``pkgc/model-<name>:<version>``."""
    platforms = tuple(dict.fromkeys(platforms)) or DEFAULT_PLATFORMS
    key = _cache_key(model, epoch, large, platforms)
    digest = _cached(store, key) if reuse else None
    reused = digest is not None
    if digest is None:
        blobs = model_layers(model_entries(model), store, epoch, digests, reuse=reuse, large=large)
        digest = _write_image(store, model, blobs, epoch, platforms).digest
        _remember(store, key, digest)
    manifests = _manifests(store, digest)
    reference = model_reference(model.name, model.version)
    media_type = INDEX if len(platforms) > 1 else MANIFEST
    store.name([reference], Blob(digest, store.blobs.path(digest).stat().st_size), media_type=media_type)
    layers = manifests[0]["layers"]
    size = sum(m["config"]["size"] for m in manifests) + sum(layer["size"] for layer in layers)
    config = manifests[0]["config"]["digest"] if len(manifests) == 1 else ""
    return ModelImage(reference, digest, config, len(layers), size, model.root_name, reused)


def source_of(model) -> ModelSource:
    """The ModelSource of a resolved model (``compiler.resolve.types.ResolvedModel``)."""
    return ModelSource(model.name, model.version, model.type, model.tree_digest, model.tree_path, model.root_name)


def package_model_image(
    pkg, cache_dir: Path, epoch: int = 0, reuse: bool = True, platforms: tuple[Platform, ...] = DEFAULT_PLATFORMS
) -> ModelImage | None:
    """The model image of a ``readonly_mount`` package (``ResolvedPackage``) built for ``platforms``,
    in pkgc's store; None for ``copy`` packages, which carry their model inside."""
    from compiler.spec.model import ModelMode

    if pkg.mode is ModelMode.COPY:
        return None
    return build_model_image(source_of(pkg.model), OciStore.in_cache(cache_dir), epoch, reuse=reuse,
                             digests=DigestCache.in_cache(cache_dir), platforms=platforms)  # fmt: skip
