"""Write small OCI images into a real pkgc OCI store (compiler.oci.store/blobs) for the architecture and
qemu tests: layers are tars built here from (path, kind, content) entries, compressed as pkgc does."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import zstandard

from compiler.oci.blobs import Blob
from compiler.oci.compress import GZIP_LAYER, TAR_LAYER, ZSTD_LAYER
from compiler.oci.store import CONFIG, INDEX, MANIFEST, OciStore
from compiler.platform import Platform


@dataclass(frozen=True)
class Entry:
    path: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink, fifo
    target: str = ""
    mode: int = 0o755


def layer_tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
            elif entry.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry.target
            elif entry.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                info.size = len(entry.data)
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return out.getvalue()


def compress(tar: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "gzip":
        return gzip.compress(tar, mtime=0), GZIP_LAYER
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(tar), ZSTD_LAYER
    return tar, TAR_LAYER


def put_image(store: OciStore, layers: list[bytes | tuple[bytes, str]], platform: Platform, name: str | None = None,
              config: dict | None = None, compression: str = "gzip") -> Blob:  # fmt: skip
    """Store an image of ``layers`` (tars, or (blob, media type) already compressed) for ``platform``;
    name it ``name`` when given; its manifest blob."""
    descriptors = []
    for layer in layers:
        blob_bytes, media = layer if isinstance(layer, tuple) else compress(layer, compression)
        blob = store.blobs.put(blob_bytes)
        descriptors.append({"mediaType": media, "digest": blob.digest, "size": blob.size})
    image_config = {**platform.oci(), "rootfs": {"type": "layers", "diff_ids": []}, "config": config or {}}
    config_blob = store.put_json(image_config)
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": descriptors,
                               "config": {"mediaType": CONFIG, "digest": config_blob.digest, "size": config_blob.size}})  # fmt: skip
    if name:
        store.name([name], manifest)
    return manifest


def put_index(store: OciStore, manifests: dict[Platform, Blob], name: str | None = None) -> Blob:
    index = store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": blob.digest, "size": blob.size, "platform": platform.oci()}
        for platform, blob in manifests.items()]})  # fmt: skip
    if name:
        store.name([name], index)
    return index
