"""Read one file back from a package image: from the engine (``IMAGE``), from an OCI image layout
(``oci:DIR[:TAG]``) or an OCI archive (``oci-archive:FILE[:TAG]``).

Layouts and archives are untrusted input, read in place through compiler.oci.layout_reader (only
regular files, every read bounded by its descriptor or a JSON limit, every blob checked against its
digest): index -> manifest -> layers (tar, gzip, zstd: ``compiler.oci.compress.open_layer``), the top-most layer holding the path wins (whiteouts
hide it).
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable

from compiler.engines.base import Engine
from compiler.errors import ResolveError, excerpt
from compiler.oci.compress import READ_ERRORS, READABLE, open_layer
from compiler.oci.layout_reader import CHUNK, OciLayout, mapping, open_layout
from compiler.platform import Platform

FILE_LIMIT = 64 << 20  # an SBOM or lock file larger than this is refused
REF_NAME = "org.opencontainers.image.ref.name"


def is_layout_reference(image: str) -> bool:
    return image.startswith(("oci:", "oci-archive:"))


def read_image_file(image: str, path: str, engine_factory: Callable[[], Engine]) -> bytes | None:
    """The bytes of ``path`` in ``image`` (None: the image has no such regular file)."""
    if is_layout_reference(image):
        return read_layout_file(image, path)
    engine = engine_factory()
    if engine.image_info(image) is None:
        raise ResolveError(f"image '{excerpt(image)}' is not in the local engine")
    return engine.read_file(image, path, FILE_LIMIT)


def open_reference(reference: str) -> OciLayout:
    """The layout or archive ``reference`` names, opened for checked reading (compiler.oci.layout_reader)."""
    layout = open_layout(reference)
    try:
        layout.check_layout_file()
    except BaseException:
        layout.close()
        raise
    return layout


def image_entry(blobs: OciLayout) -> dict:
    """The index.json entry the tag names, or the only image (artifacts attached as referrers,
    which carry an ``artifactType``, are not images); a descriptor checked for shape."""
    index = blobs.json("index.json")
    manifests = index.get("manifests")
    manifests = [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
    if not manifests:
        raise blobs.error("index.json", "lists no manifests")
    if blobs.tag:
        chosen = [m for m in manifests if mapping(m.get("annotations")).get(REF_NAME) == blobs.tag]
        if not chosen:
            raise blobs.fail(f"no manifest is tagged '{excerpt(blobs.tag)}'")
    else:
        chosen = [m for m in manifests if "artifactType" not in m]
        if len(chosen) != 1:
            raise blobs.error("index.json", f"lists {len(chosen)} images; name one with :TAG")
    blobs.descriptor(chosen[0], "index.json's manifest")
    return chosen[0]


def _manifest(blobs: OciLayout, platform: Platform | None = None) -> dict:
    """The image manifest the tag names (or the only one), through nested indexes to ``platform``'s
    (default: the host's)."""
    return blobs.image_manifest(image_entry(blobs), platform)[1]


def _layer_entry(blobs: OciLayout, descriptor: dict, inner: str) -> tuple[str, bytes | None]:
    """('file', bytes) when the layer holds ``inner``, ('gone', None) when it hides it, ('', None) otherwise."""
    digest, _ = blobs.descriptor(descriptor, "a layer")
    media = str(descriptor.get("mediaType", ""))
    if media not in READABLE:
        raise blobs.error(f"blobs/sha256/{digest[7:]}", f"has media type '{excerpt(media, 80)}', which pkgc cannot read")
    found: tuple[str, bytes | None] = ("", None)
    parent, _, base = inner.rpartition("/")
    folder = f"{parent}/" if parent else ""
    with blobs.open_blob(descriptor, what="a layer") as raw:
        try:
            stream = open_layer(raw, media)  # type: ignore[arg-type]
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    name = member.name.removeprefix("./").rstrip("/")
                    if name == inner and member.isfile():
                        if member.size > FILE_LIMIT:
                            raise blobs.error(f"blobs/sha256/{digest[7:]}", f"holds {inner} larger than {FILE_LIMIT} bytes")
                        found = ("file", tar.extractfile(member).read())  # type: ignore[union-attr]
                    elif name == inner or name in (f"{folder}.wh.{base}", f"{folder}.wh..wh..opq"):
                        found = ("gone", None) if found[0] != "file" else found
        except (OSError, EOFError, tarfile.TarError, zlib.error, *READ_ERRORS) as exc:
            raise blobs.error(f"blobs/sha256/{digest[7:]}", f"is not a readable layer: {excerpt(str(exc), 80)}") from None
        while raw.read(CHUNK):  # the digest covers the whole blob: the read reaching its end checks it
            pass
    return found


def read_layout_file(reference: str, path: str, platform: Platform | None = None) -> bytes | None:
    """``path`` (absolute) from the image an ``oci:``/``oci-archive:`` reference names (its
    ``platform`` image when it is an index; default: the host's)."""
    blobs = open_reference(reference)
    try:
        layers = _manifest(blobs, platform)["layers"]  # a list of checked descriptors
        read: set[str] = set()  # a layer listed again says nothing new: each blob is read once
        for descriptor in reversed(layers):  # the top-most layer that mentions the path decides
            if descriptor["digest"] in read:
                continue
            read.add(descriptor["digest"])
            state, data = _layer_entry(blobs, descriptor, path.lstrip("/"))
            if state:
                return data
        return None
    finally:
        blobs.close()




Layout = open_reference  # the name callers used before the shared reader (compiler.oci.layout_reader)
