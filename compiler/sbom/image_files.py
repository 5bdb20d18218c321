"""Read one file back from a package image: from the engine (``IMAGE``), from an OCI image layout
(``oci:DIR[:TAG]``) or an OCI archive (``oci-archive:FILE[:TAG]``).

Layouts and archives are untrusted input read with the standard library only: index -> manifest ->
layers (tar, gzip), every blob checked against its digest, the top-most layer holding the path wins
(whiteouts hide it), sizes bounded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from compiler.engines.base import Engine
from compiler.errors import ResolveError, SpecError, SpecProblem, excerpt

FILE_LIMIT = 64 << 20  # an SBOM or lock file larger than this is refused
JSON_LIMIT = 4 << 20  # index and manifest documents
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


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


class _Blobs:
    """Blobs of a layout folder or an archive's members, opened by digest and checked as they are read."""

    def __init__(self, reference: str):
        kind, _, rest = reference.partition(":")
        location, _, self.tag = rest.partition(":")
        self.reference, self.path = reference, Path(location)
        self._tar: tarfile.TarFile | None = None
        if not location:
            raise SpecError(SpecProblem(reference, "", "expected oci:DIR[:TAG] or oci-archive:FILE[:TAG]"))
        try:
            if kind == "oci-archive":
                self._tar = tarfile.open(self.path)
            elif not self.path.is_dir():
                raise SpecError(SpecProblem(reference, "", f"{location} is not an OCI layout folder"))
        except (OSError, tarfile.TarError) as exc:
            raise SpecError(SpecProblem(reference, "", f"cannot read {location}: {exc}")) from None

    def fail(self, why: str) -> SpecError:
        return SpecError(SpecProblem(self.reference, "", why))

    def open(self, name: str) -> BinaryIO:
        try:
            if self._tar is None:
                return open(self.path / name, "rb")
            member = self._tar.getmember(name)
            handle = self._tar.extractfile(member) if member.isfile() else None
            if handle is None:
                raise KeyError(name)
            return handle
        except (OSError, KeyError):
            raise self.fail(f"{name} is missing from the layout") from None

    def json(self, name: str) -> dict:
        with self.open(name) as fh:
            data = fh.read(JSON_LIMIT + 1)
        if len(data) > JSON_LIMIT:
            raise self.fail(f"{name} is larger than {JSON_LIMIT} bytes")
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise self.fail(f"{name} is not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise self.fail(f"{name} is not a JSON object")
        return value

    def blob_json(self, descriptor: object) -> dict:
        digest = _digest(self, descriptor)
        value = self.json(f"blobs/sha256/{digest[7:]}")
        with self.open(f"blobs/sha256/{digest[7:]}") as fh:
            if "sha256:" + hashlib.sha256(fh.read(JSON_LIMIT + 1)).hexdigest() != digest:
                raise self.fail(f"blob {digest} does not match its digest")
        return value

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _digest(blobs: _Blobs, descriptor: object) -> str:
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise blobs.fail(f"a descriptor's digest {excerpt(str(digest))!r} is not sha256:<64 hex>")
    return digest


def image_entry(blobs: _Blobs) -> dict:
    """The index.json entry the tag names, or the only image (artifacts attached as referrers,
    which carry an ``artifactType``, are not images)."""
    index = blobs.json("index.json")
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests:
        raise blobs.fail("index.json lists no manifests")
    if blobs.tag:
        chosen = [m for m in manifests if isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) == blobs.tag]
        if not chosen:
            raise blobs.fail(f"no manifest is tagged '{excerpt(blobs.tag)}'")
        return chosen[0]
    images = [m for m in manifests if not (isinstance(m, dict) and "artifactType" in m)]
    if len(images) != 1:
        raise blobs.fail(f"index.json lists {len(images)} images; name one with :TAG")
    return images[0]


def _manifest(blobs: _Blobs) -> dict:
    """The image manifest the tag names (or the only one), through nested indexes to linux/amd64."""
    descriptor = image_entry(blobs)
    for _ in range(4):  # an index of indexes, at most a few deep
        document = blobs.blob_json(descriptor)
        if document.get("mediaType") not in INDEX_TYPES and "manifests" not in document:
            return document
        platform = [m for m in document.get("manifests") or [] if isinstance(m, dict)
                    and (m.get("platform") or {}).get("os") == "linux" and (m.get("platform") or {}).get("architecture") == "amd64"]  # fmt: skip
        if not platform:
            raise blobs.fail("the image index has no linux/amd64 manifest")
        descriptor = platform[0]
    raise blobs.fail("image indexes nested too deep")


def _layer_entry(blobs: _Blobs, descriptor: dict, inner: str) -> tuple[str, bytes | None]:
    """('file', bytes) when the layer holds ``inner``, ('gone', None) when it hides it, ('', None) otherwise."""
    digest = _digest(blobs, descriptor)
    media = str(descriptor.get("mediaType", ""))
    if "zstd" in media:
        raise blobs.fail(f"layer {digest} is zstd-compressed, which pkgc cannot read")
    hasher, found = hashlib.sha256(), ("", None)
    parent, _, base = inner.rpartition("/")
    folder = f"{parent}/" if parent else ""
    with blobs.open(f"blobs/sha256/{digest[7:]}") as raw:
        tee = _Hashing(raw, hasher)
        stream = gzip.GzipFile(fileobj=tee) if "gzip" in media else tee
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    name = member.name.removeprefix("./").rstrip("/")
                    if name == inner and member.isfile():
                        if member.size > FILE_LIMIT:
                            raise blobs.fail(f"{inner} in layer {digest} is larger than {FILE_LIMIT} bytes")
                        found = ("file", tar.extractfile(member).read())
                    elif name == inner or name in (f"{folder}.wh.{base}", f"{folder}.wh..wh..opq"):
                        found = ("gone", None) if found[0] != "file" else found
            while tee.read(CHUNK):  # the digest covers the whole blob
                pass
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise blobs.fail(f"layer {digest} is not a readable tar: {exc}") from None
    if "sha256:" + hasher.hexdigest() != digest:
        raise blobs.fail(f"layer {digest} does not match its digest")
    return found


class _Hashing(io.RawIOBase):
    """A reader that hashes everything read through it."""

    def __init__(self, raw: BinaryIO, hasher):
        self._raw, self._hasher = raw, hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        self._hasher.update(data)
        buffer[: len(data)] = data
        return len(data)


def read_layout_file(reference: str, path: str) -> bytes | None:
    """``path`` (absolute) from the image an ``oci:``/``oci-archive:`` reference names."""
    blobs = _Blobs(reference)
    try:
        layers = _manifest(blobs).get("layers")
        if not isinstance(layers, list):
            raise blobs.fail("the manifest has no layers list")
        for descriptor in reversed(layers):  # the top-most layer that mentions the path decides
            state, data = _layer_entry(blobs, descriptor, path.lstrip("/"))
            if state:
                return data
        return None
    finally:
        blobs.close()


Layout = _Blobs  # an oci:DIR[:TAG] or oci-archive:FILE[:TAG] opened for checked reading
