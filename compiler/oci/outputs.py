"""Every output of an OCI-built image comes from the same blobs in pkgc's store: an ``oci:DIR``
layout, an ``oci-archive:FILE``, or a ``docker-archive`` stream for ``docker load``.

Outputs are written completely under a temporary name and renamed into place (compiler.outputs.targets'
``PreparedOutput``/``commit_output``), so a failure leaves nothing half-written."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from compiler.oci.compress import engine_readable, inflated_size, open_layer
from compiler.oci.store import INDEX, LAYOUT, MANIFEST, REF_NAME, OciStore, canonical_json

MAX_PLATFORMS = 16  # entries of an image index pkgc reads back from its own store


@dataclass(frozen=True)
class StoredImage:
    """A built image in the store: its manifest digest and the blobs it needs; for an image index
    of several platforms, its ``children`` (one image each) and their platforms."""

    manifest_digest: str
    manifest_size: int
    config_digest: str
    layer_digests: tuple[str, ...]
    media_type: str = MANIFEST
    children: tuple["StoredImage", ...] = ()
    platforms: tuple[dict, ...] = ()  # the index's platform object of each child

    @classmethod
    def read(cls, store: OciStore, manifest_digest: str) -> "StoredImage":
        document = store.read_json(manifest_digest)
        size = store.blobs.path(manifest_digest).stat().st_size
        if document.get("mediaType") == INDEX:  # pkgc's own index of platform images: one level, no nesting
            entries = [m for m in document.get("manifests") or [] if m.get("mediaType") == MANIFEST][:MAX_PLATFORMS]
            children = tuple(cls.read(store, m["digest"]) for m in entries)
            return cls(manifest_digest, size, "", (), INDEX, children, tuple(m.get("platform") or {} for m in entries))
        return cls(manifest_digest, size, document["config"]["digest"], tuple(l["digest"] for l in document["layers"]))

    @property
    def blobs(self) -> list[str]:
        if self.children:
            return list(dict.fromkeys([self.manifest_digest, *(b for child in self.children for b in child.blobs)]))
        return [self.manifest_digest, self.config_digest, *dict.fromkeys(self.layer_digests)]

    def image_for(self, platform: dict) -> "StoredImage | None":
        """The image for an OCI ``platform`` (os, architecture): itself when it is one image."""
        if not self.children:
            return self
        wanted = (platform.get("os"), platform.get("architecture"))
        return next((c for c, p in zip(self.children, self.platforms) if (p.get("os"), p.get("architecture")) == wanted), None)


def _place(source: Path, target: Path) -> None:
    """Hard-link a blob when the store shares the file system, else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def write_layout(store: OciStore, image: StoredImage, folder: Path, tag: str) -> int:
    """Write an OCI image layout holding ``image`` as ``tag``; return its size in bytes."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    size = 0
    for digest in image.blobs:
        source = store.blobs.path(digest)
        _place(source, blobs / digest.split(":", 1)[1])
        size += source.stat().st_size
    (folder / "oci-layout").write_bytes(canonical_json(LAYOUT))
    (folder / "index.json").write_bytes(canonical_json(_layout_index(image, tag)))
    return size


def _layout_index(image: StoredImage, tag: str) -> dict:
    """A layout's ``index.json``: one entry, the image (or the index of its platforms), named ``tag``."""
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": image.media_type, "digest": image.manifest_digest, "size": image.manifest_size,
         "annotations": {REF_NAME: tag}}]}  # fmt: skip


def _tar_info(name: str, size: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, 0o755 if directory else 0o644, 0, 0, 0
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info


def write_archive(store: OciStore, image: StoredImage, path: Path, tag: str) -> int:
    """Write an ``oci-archive`` (a tar of the layout, entries sorted, fixed times)."""
    small = {"index.json": canonical_json(_layout_index(image, tag)), "oci-layout": canonical_json(LAYOUT)}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_tar_info("blobs", 0, True))
        tar.addfile(_tar_info("blobs/sha256", 0, True))
        for digest in sorted(image.blobs):
            source = store.blobs.path(digest)
            with open(source, "rb") as fh:
                tar.addfile(_tar_info(f"blobs/sha256/{digest.split(':', 1)[1]}", source.stat().st_size), fh)
        for name in sorted(small):
            tar.addfile(_tar_info(name, len(small[name])), io.BytesIO(small[name]))
    return path.stat().st_size


def write_docker_archive(store: OciStore, image: StoredImage, tags: list[str], out, skip: set[str] = frozenset()) -> None:
    """A ``docker load`` archive of ``image`` (gzip layers and plain tars as they are stored; the
    engine inflates gzip; zstd layers, which Docker 20.10 cannot read, inflated on the way: a first
    pass counts the tar's size for its header, the second streams it).

    Layers in ``skip`` (diff_ids whose chain the engine already holds) are named but not sent: the
    engine reuses a layer chain it has without opening its file."""
    config = store.read_json(image.config_digest)
    diff_ids = config["rootfs"]["diff_ids"]
    names = [f"{d.split(':', 1)[1]}.tar" for d in image.layer_digests]
    media_types = [layer.get("mediaType", "") for layer in store.read_json(image.manifest_digest)["layers"]]
    manifest = [{"Config": f"{image.config_digest.split(':', 1)[1]}.json", "RepoTags": tags, "Layers": names}]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name, digest, diff_id, media in zip(names, image.layer_digests, diff_ids, media_types):
            if diff_id in skip:
                continue
            source = store.blobs.path(digest)
            with open(source, "rb") as fh:
                if engine_readable(media):
                    tar.addfile(_tar_info(name, source.stat().st_size), fh)
                else:
                    with open_layer(fh, media) as inflated:
                        tar.addfile(_tar_info(name, inflated_size(source, media)), inflated)
        config_bytes = store.blobs.path(image.config_digest).read_bytes()
        tar.addfile(_tar_info(manifest[0]["Config"], len(config_bytes)), io.BytesIO(config_bytes))
        data = json.dumps(manifest).encode()
        tar.addfile(_tar_info("manifest.json", len(data)), io.BytesIO(data))
