"""The model's files as layers, for a copy-mode package and for the model image alike.

Each file of at least ``LARGE_FILE`` bytes is its own layer, in path order, before one layer of all the
smaller files and every folder (an engine keeps a layer only below the same layers, so the files
that change least go first); layers are plain tars (weights do not compress). Every layer is
remembered by what it holds (in-image paths, modes, content digests, mtime), and content digests of
the workspace's stored files are remembered by their stat facts (``DigestCache``): a rebuild whose
model did not change reads no model byte, and a model that gained one small file rewrites only the
small-files layer. Engines and registries that hold the large layers receive nothing new.

In a copy-mode package the files sit at one path whatever the model's name and version
(``MODEL_FILES``), and the model dir (``AZUREML_MODEL_DIR``: ``.../azureml-models/<name>/<version>``)
is a link to it, so a new version of a model (each changed inline model is one) keeps the layers
of the files it kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Callable

from compiler.oci.aligned_header import LAYOUT as PLAIN_LAYOUT
from compiler.oci.layer import TAR_LAYER, Entry, LayerBlob, write_layer
from compiler.oci.store import OciStore
from compiler.workspace.digest_cache import DigestCache
from compiler.workspace.trees import stored_file_sha256

LARGE_FILE = 64 * 1024 * 1024
FORMAT = 1  # bump when a model layer's content rules change (invalidates remembered layers)
if TYPE_CHECKING:
    from compiler.cache.registry_cache import RegistryCache

MEMO = "model-layers"
MODEL_FILES = "opt/pkgc/model-files"  # a copy-mode package's model files, whatever the model's version


def at_stable_path(entries: list[Entry], model_dir: str) -> list[Entry]:
    """``entries`` placed below ``model_dir`` moved to ``MODEL_FILES``, and ``model_dir`` a link to it."""
    prefix = model_dir.strip("/") + "/"
    moved = [Entry(**{**e.__dict__, "path": MODEL_FILES + "/" + e.path.strip("/")[len(prefix):]})
             if e.path.strip("/").startswith(prefix) else e for e in entries]  # fmt: skip
    return [Entry(MODEL_FILES, "dir", 0o755), Entry(prefix.rstrip("/"), "symlink", 0o777, target="/" + MODEL_FILES), *moved]


def split_layers(entries: list[Entry], large: int = LARGE_FILE) -> list[list[Entry]]:
    """Each large file alone, in path order, then the small files (and every folder) together."""
    big = sorted((e for e in entries if e.kind == "file" and e.source is not None and e.source.stat().st_size >= large),
                 key=lambda e: e.path)  # fmt: skip
    big_paths = {e.path for e in big}
    small = [e for e in entries if e.path not in big_paths]
    return [[e] for e in big] + ([small] if small else [])


def _content(entry: Entry, digests: DigestCache | None) -> str:
    if entry.kind != "file":
        return entry.target
    if entry.data is not None:
        return hashlib.sha256(entry.data).hexdigest()
    assert entry.source is not None
    return stored_file_sha256(entry.source, digests)


def layer_key(group: list[Entry], epoch: int, digests: DigestCache | None) -> str:
    """What a model layer holds, as one digest: its entries' paths, kinds, modes, owners and contents."""
    facts = [FORMAT, TAR_LAYER, PLAIN_LAYOUT, epoch,
             sorted((e.path.strip("/"), e.kind, e.mode, e.uid, e.gid, _content(e, digests)) for e in group)]  # fmt: skip
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


def _remembered(store: OciStore, key: str) -> LayerBlob | None:
    try:
        blob = LayerBlob(**json.loads((store.root / MEMO / f"{key}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return blob if blob.media_type == TAR_LAYER and store.blobs.has(blob.digest) else None


def _remember(store: OciStore, key: str, blob: LayerBlob) -> None:
    folder = store.root / MEMO
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.json.partial"
    tmp.write_text(json.dumps(asdict(blob)))
    tmp.replace(folder / f"{key}.json")


def model_layers(
    entries: list[Entry], store: OciStore, epoch: int, digests: DigestCache | None, *, reuse: bool = True,
    large: int = LARGE_FILE, on_layer: Callable[[LayerBlob, bool], None] = lambda _blob, _reused: None,
    cache: "RegistryCache | None" = None,
) -> list[LayerBlob]:
    """The model's layers in ``store``: remembered ones reused (unless ``reuse`` is off), or found in
    the shared build ``cache`` (by descriptor, bytes not fetched), the others written (and offered to
    the cache); ``on_layer`` hears each blob and whether it was reused."""
    blobs = []
    for group in split_layers(entries, large):
        key = layer_key(group, epoch, digests)
        blob = _remembered(store, key) if reuse else None
        if blob is None and cache is not None and reuse:
            found = cache.find(key)
            blob = found.layers[0] if found is not None and len(found.layers) == 1 else None
        elif blob is not None and cache is not None:
            cache.offer(key, [blob])
        reused = blob is not None
        if blob is None:
            blob = write_layer(group, store.blobs, epoch, compress=False)
            _remember(store, key, blob)
            if cache is not None:
                cache.offer(key, [blob])
        on_layer(blob, reused)
        blobs.append(blob)
    return blobs
