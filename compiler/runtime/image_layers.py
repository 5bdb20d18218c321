"""An image of one platform, found and read layer by layer: from pkgc's OCI store (a name pkgc gave it,
or a manifest digest) or an ``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]`` reference.

The store is an OCI image layout itself, so both are read through ``compiler.oci.layout_reader`` (only
regular files, every blob checked against its digest). An image index is resolved to the manifest of
the ``Platform`` asked for (``Platform.from_oci``). Layers are read as tar streams (gzip, zstd or
plain: ``compiler.oci.compress.open_layer``) with every read bounded: at most ``max_inflated`` bytes of
tar in all layers (a tar bomb stops there), at most ``max_members`` members, extended headers bounded
(``compiler.workspace.archive_reader``)."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from compiler.errors import ResolveError, excerpt
from compiler.oci.compress import READ_ERRORS, READABLE, open_layer
from compiler.oci.layout_reader import (CHUNK, INDEX_TYPES, MAX_LAYERS, MAX_NESTING, FolderLayout, LayoutError,
                                        OciLayout, mapping)  # fmt: skip
from compiler.oci.store import REF_NAME, OciStore
from compiler.platform import Platform
from compiler.sbom.image_files import image_entry, is_layout_reference, open_reference
from compiler.workspace.archive_reader import Oversized, Unreadable
from compiler.workspace.archive_reader import _BoundedTarInfo as BoundedTarInfo  # one bound for every tar pkgc reads
from compiler.workspace.archive_reader import members as tar_members


@dataclass(frozen=True)
class LayerLimits:
    """What one pass over an image's layers may read."""

    max_inflated: int = 64 << 30  # tar bytes, all layers together
    max_members: int = 2_000_000  # tar members, all layers together


@dataclass
class PlatformImage:
    """One platform's image manifest and config, and the layout that holds its blobs (close it)."""

    layout: OciLayout
    name: str  # how messages name it
    descriptor: dict
    manifest: dict
    config: dict
    platform: Platform
    _owned: bool = field(default=True, repr=False)

    @property
    def digest(self) -> str:
        return str(self.descriptor["digest"])

    @property
    def layers(self) -> list[dict]:
        return list(self.manifest["layers"])

    @property
    def runtime(self) -> dict:
        """The image config's ``config`` object (Env, Entrypoint, Cmd, WorkingDir, User, Labels)."""
        return mapping(self.config.get("config"))

    def close(self) -> None:
        if self._owned:
            self.layout.close()

    def __enter__(self) -> "PlatformImage":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def platform_manifest(layout: OciLayout, descriptor: dict, platform: Platform) -> tuple[dict, dict]:
    """(descriptor, manifest) of ``platform``'s image, through image indexes (at most MAX_NESTING deep);
    an index without that platform, or a single manifest whose config states another, is a LayoutError."""
    for _ in range(MAX_NESTING + 1):
        document = layout.blob_json(descriptor, "a manifest")
        name = f"blobs/sha256/{layout.descriptor(descriptor)[0][7:]}"
        if document.get("mediaType") not in INDEX_TYPES and "manifests" not in document:
            layers = document.get("layers")
            if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
                raise layout.error(name, f"is not an image manifest with a list of at most {MAX_LAYERS} layers")
            for layer in layers:
                layout.descriptor(layer, "a layer")
            layout.descriptor(document.get("config"), "the manifest's config")
            return descriptor, document
        entries = document.get("manifests")
        entries = [m for m in entries if isinstance(m, dict)] if isinstance(entries, list) else []
        chosen = [m for m in entries if Platform.from_oci(mapping(m.get("platform"))) == platform]
        if not chosen:
            listed = sorted({str(p) for m in entries if (p := Platform.from_oci(mapping(m.get("platform"))))})
            raise layout.error(name, f"the image index has no {platform} manifest (it has: {', '.join(listed) or 'none pkgc knows'})")
        descriptor = chosen[0]
    raise layout.fail(f"image indexes are nested more than {MAX_NESTING} deep")


def layout_entry(layout: OciLayout, platform: Platform) -> dict:
    """The index.json entry to read: the one the tag names (or the only image), or, when index.json lists
    one manifest per platform (``platform`` fields), the one of ``platform`` among them."""
    manifests = layout.json("index.json").get("manifests")
    entries = [m for m in manifests if isinstance(m, dict) and "artifactType" not in m] if isinstance(manifests, list) else []
    if layout.tag:
        entries = [m for m in entries if mapping(m.get("annotations")).get(REF_NAME) == layout.tag]
    stated = [m for m in entries if Platform.from_oci(mapping(m.get("platform"))) == platform]
    if len(entries) > 1 and len(stated) == 1:
        layout.descriptor(stated[0], "index.json's manifest")
        return stated[0]
    return image_entry(layout)


def _finish(layout: OciLayout, name: str, top: dict, platform: Platform) -> PlatformImage:
    descriptor, manifest = platform_manifest(layout, top, platform)
    config = layout.blob_json(manifest["config"], "the manifest's config")
    stated = Platform.from_oci(config) if config.get("architecture") else None
    if config.get("architecture") and stated != platform:
        found = f"{config.get('os')}/{config.get('architecture')}"
        raise ResolveError(f"image '{excerpt(name)}' is {excerpt(found, 40)}, not {platform}")
    return PlatformImage(layout, name, descriptor, manifest, config, platform)


def store_layout(store: OciStore) -> FolderLayout:
    """pkgc's OCI store opened as the layout it is."""
    return FolderLayout(store.root, f"pkgc's OCI store {store.root}")


def open_stored(store: OciStore, manifest_digest: str, platform: Platform) -> PlatformImage:
    """The image (or index) ``manifest_digest`` in pkgc's store, resolved to ``platform``."""
    try:
        size = store.blobs.path(manifest_digest).stat().st_size
    except (OSError, ValueError):
        raise ResolveError(f"{manifest_digest[:80]} is not in pkgc's OCI store {store.root}") from None
    layout = store_layout(store)
    try:
        return _finish(layout, manifest_digest, {"digest": manifest_digest, "size": size}, platform)
    except BaseException:
        layout.close()
        raise


def open_image(image: str, store: OciStore, platform: Platform) -> PlatformImage | None:
    """``image`` (``oci:``/``oci-archive:`` reference, or a name in pkgc's store) resolved to ``platform``;
    None when it is a name the store does not hold."""
    if is_layout_reference(image):
        layout = open_reference(image)
        try:
            return _finish(layout, image, layout_entry(layout, platform), platform)
        except BaseException:
            layout.close()
            raise
    entry = store.find(image)
    if entry is None:
        return None
    layout = store_layout(store)
    try:
        return _finish(layout, image, {"digest": entry["digest"], "size": entry.get("size")}, platform)
    except BaseException:
        layout.close()
        raise


class _Counted:
    """A layer's tar stream that fails once all layers together have given more than ``budget`` bytes."""

    def __init__(self, stream, budget: list[int], limit: int):
        self._stream, self._budget, self._limit = stream, budget, limit

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise Unreadable("an unbounded read")
        block = self._stream.read(size)
        self._budget[0] -= len(block)
        if self._budget[0] < 0:
            raise Oversized(f"unpacks to more than {self._limit} bytes of tar (the limit; a tar bomb?)")
        return block


class LayerError(ResolveError):
    """A layer that cannot be read (bad input, exit 2): names the image, the layer and the member."""


LAYER_ERRORS = (Oversized, Unreadable, OSError, EOFError, tarfile.TarError, zlib.error, *READ_ERRORS)


@dataclass(frozen=True)
class Member:
    """One tar member of one layer: its index (0 = the bottom layer) and header; ``read`` reads its content."""

    layer: int
    info: tarfile.TarInfo
    tar: tarfile.TarFile
    where: str

    def read(self, size: int) -> bytes:
        """At most ``size`` bytes of a regular file's content (LayerError when the layer ends first)."""
        try:
            handle = self.tar.extractfile(self.info)
            return handle.read(size) if handle is not None else b""
        except LayoutError:
            raise
        except LAYER_ERRORS as exc:
            why = excerpt(str(exc) or type(exc).__name__, 160)
            raise LayerError(f"{self.where}: member '{excerpt(self.info.name, 80)}' cannot be read: {why}") from None


@contextmanager
def _layer_tar(image: PlatformImage, index: int, descriptor: dict, budget: list[int], limits: LayerLimits):
    media = str(descriptor.get("mediaType", ""))
    where = f"image '{excerpt(image.name)}' layer {index + 1} ({str(descriptor['digest'])[:19]})"
    if media not in READABLE:
        raise LayerError(f"{where} has media type '{excerpt(media, 80)}', which pkgc cannot read")
    with image.layout.open_blob(descriptor, what="a layer") as raw:
        stream = _Counted(open_layer(raw, media), budget, limits.max_inflated)  # type: ignore[arg-type]
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=BoundedTarInfo) as tar:  # type: ignore[call-overload]
            yield where, tar
        while raw.read(CHUNK):  # the digest covers the whole blob: reading to its end checks it
            pass


def layer_members(image: PlatformImage, limits: LayerLimits = LayerLimits()) -> Iterator[Member]:
    """Every member of every layer, bottom layer first, each layer's in archive order; LayerError (exit 2)
    for an unreadable layer, a tar bomb past ``limits`` or too many members."""
    budget, count = [limits.max_inflated], 0
    for index, descriptor in enumerate(image.layers):
        where, last = f"image '{excerpt(image.name)}' layer {index + 1}", None
        try:
            with _layer_tar(image, index, descriptor, budget, limits) as (where, tar):
                for info in tar_members(tar):
                    count += 1
                    if count > limits.max_members:
                        raise Oversized(f"holds more than {limits.max_members} members in all (the limit)")
                    yield Member(index, info, tar, where)
                    last = info.name
        except LayoutError:
            raise
        except LAYER_ERRORS as exc:
            after = f" after member '{excerpt(last, 80)}'" if last else ""
            raise LayerError(f"{where}{after}: {excerpt(str(exc) or type(exc).__name__, 160)}") from None


def member_path(name: str) -> str | None:
    """A member's name as a path relative to the root ('./usr//bin/' -> 'usr/bin'); None for one that
    names the root or climbs out of it ('..')."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"


def whiteout_of(path: str) -> tuple[str, bool] | None:
    """For a whiteout member: (the path it hides, True when it is an opaque folder's marker); else None."""
    parent, _, base = path.rpartition("/")
    if base == OPAQUE:
        return parent, True
    if base.startswith(WHITEOUT):
        hidden = base[len(WHITEOUT):]
        return (f"{parent}/{hidden}" if parent else hidden), False
    return None
