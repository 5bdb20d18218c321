"""The base image, by digest: from the engine (saved and imported into the store once per image
id), from an ``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]`` reference, from a registry
(``docker://HOST/REPO:TAG``, or ``HOST/REPO:TAG`` no engine holds: ``registry.py``), or from pkgc's OCI store.

Layers imported from the engine are compressed with pkgc's own deterministic gzip, so a base image
has the same digests whether it came from the engine or was written by ``pkgc base-image build``
with no engine (the layer tars are the same bytes)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from compiler.engines.base import Engine
from compiler.errors import BuildError
from compiler.oci.blobs import Blob
from compiler.oci.compress import compressor
from compiler.oci.layer import GZIP_LAYER, LayerBlob
from compiler.oci.store import CONFIG, ENGINE_ID, MANIFEST, OciStore, canonical_json

SMALL = 16 << 20  # docker-archive members kept in memory (JSON, small layers)


@dataclass(frozen=True)
class BaseImage:
    """A base image in the store: its manifest (digest and content) and its config."""

    reference: str
    manifest_digest: str
    manifest: dict
    config: dict
    source: str  # engine | store | oci | oci-archive | registry

    @property
    def layers(self) -> list[dict]:
        return list(self.manifest["layers"])

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})


def split_oci_reference(ref: str) -> tuple[str, Path, str | None] | None:
    """``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]`` -> (kind, path, tag); None for other references."""
    kind, sep, rest = ref.partition(":")
    if not sep or kind not in ("oci", "oci-archive"):
        return None
    path, _, tag = rest.partition(":")
    return kind, Path(path).expanduser(), tag or None


def load_from_store(store: OciStore, descriptor: dict, reference: str, source: str) -> BaseImage:
    manifest = store.read_json(descriptor["digest"])
    config = store.read_json(manifest["config"]["digest"])
    return BaseImage(reference, descriptor["digest"], manifest, config, source)


def resolve_base(reference: str, store: OciStore, engine: Engine | None, log) -> BaseImage:
    """Find ``reference`` and make sure its blobs are in ``store``."""
    oci = split_oci_reference(reference)
    if oci is not None:
        kind, path, tag = oci
        if kind == "oci-archive":
            return _from_oci_archive(path, tag, store, reference)
        return _from_oci_layout(path, tag, store, reference, "oci")
    from compiler.oci.registry import from_registry, parse_registry_image

    registry = parse_registry_image(reference)
    if engine is not None and not reference.startswith("docker://"):
        info = engine.image_info(reference)
        if info is not None:
            known = store.find_engine_image(info.id)
            if known is None:
                log(f"importing base image {reference} ({info.id[:19]}) from the engine into pkgc's OCI store")
                manifest = import_docker_archive(engine.save(reference), store)
                store.name([f"engine:{info.id}"], manifest, {ENGINE_ID: info.id})
                known = store.find_engine_image(info.id)
            assert known is not None
            found = store.find(reference)
            if found is None or found["digest"] != known["digest"]:  # so a build with no engine finds it too
                size = store.blobs.path(known["digest"]).stat().st_size
                store.name([reference], Blob(known["digest"], size), {ENGINE_ID: info.id})
            return load_from_store(store, known, reference, "engine")
    if registry is not None:
        manifest = from_registry(registry, reference, store, log)
        return load_from_store(store, {"digest": manifest.digest}, reference, "registry")
    known = store.find(reference)
    if known is not None and store.blobs.has(known["digest"]):
        return load_from_store(store, known, reference, "store")
    where = "the engine nor in" if engine is not None else "pkgc's OCI store (no engine answers):"
    raise BuildError(
        f"base image {reference} is neither in {where} {store.root}; "
        "build it with 'pkgc base-image build', or name an oci:DIR or oci-archive:FILE base"
    )


def compress_layer(store: OciStore, stream: IO[bytes]) -> LayerBlob:
    """Store the layer tar read from ``stream`` gzip-compressed (pkgc's deterministic gzip)."""
    writer, diff, deflate = store.blobs.writer(), hashlib.sha256(), compressor()
    try:
        while block := stream.read(1 << 20):
            diff.update(block)
            writer.write(deflate.compress(block))
        writer.write(deflate.flush())
    except BaseException:
        writer.abort()
        raise
    blob = writer.commit()
    return LayerBlob(blob.digest, blob.size, "sha256:" + diff.hexdigest(), GZIP_LAYER)


class _ChunkReader:
    """A read()-able view of an iterator of byte chunks (the engine's ``docker save`` stream)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._buf = iter(chunks), b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if size < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:size], self._buf[size:]
        return data


def import_docker_archive(chunks: Iterator[bytes], store: OciStore) -> Blob:
    """Import a ``docker save`` stream: each layer gzip-compressed into the store, the config kept
    byte for byte (its digest is the engine's image id); returns the new OCI manifest's blob."""
    small: dict[str, bytes] = {}
    layers: dict[str, LayerBlob] = {}
    links: dict[str, str] = {}
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            if member.issym() or member.islnk():
                links[member.name] = (Path(member.name).parent / member.linkname).as_posix() if member.issym() else member.linkname
            elif member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None
                if member.size <= SMALL and not member.name.endswith("layer.tar"):
                    small[member.name] = fh.read()
                else:
                    layers[member.name] = compress_layer(store, fh)
    if "manifest.json" not in small:
        raise BuildError("the engine's image archive has no manifest.json")
    entry = json.loads(small["manifest.json"])[0]
    config_bytes = small[entry["Config"]]
    descriptors = []
    for name in entry["Layers"]:
        name = _follow(name, links)
        if name not in layers:  # a small layer kept in memory
            layers[name] = compress_layer(store, io.BytesIO(small[name]))
        descriptors.append(layers[name].descriptor())
    config = store.blobs.put(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size}, "layers": descriptors}  # fmt: skip
    return store.blobs.put(canonical_json(manifest))


def _follow(name: str, links: dict[str, str]) -> str:
    seen = 0
    while name in links and seen < 16:
        name, seen = links[name], seen + 1
    return name


def _pick_manifest(index: dict, tag: str | None, where: str) -> dict:
    manifests = index.get("manifests") or []
    if tag is not None:
        manifests = [m for m in manifests if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag]
    else:  # artifacts attached as referrers (an SBOM, attestations) are not images
        manifests = [m for m in manifests if "artifactType" not in m]
    if len(manifests) != 1:
        what = f"no image tagged '{tag}'" if tag and not manifests else f"{len(manifests)} images; name one with :TAG"
        raise BuildError(f"{where}: {what}")
    return manifests[0]


def _from_oci_layout(path: Path, tag: str | None, store: OciStore, reference: str, source: str) -> BaseImage:
    """Copy an OCI layout's image (an index picks linux/amd64) into the store, checking every digest."""
    try:
        index = json.loads((path / "index.json").read_text())
        descriptor = _pick_manifest(index, tag, reference)
        while descriptor.get("mediaType") == "application/vnd.oci.image.index.v1+json":
            nested = json.loads(_copy_blob(path, descriptor["digest"], store))
            amd64 = [m for m in nested.get("manifests", []) if (m.get("platform") or {}).get("architecture") == "amd64"]
            if not amd64:
                raise BuildError(f"{reference}: the image index has no linux/amd64 image")
            descriptor = amd64[0]
        manifest = json.loads(_copy_blob(path, descriptor["digest"], store))
        _copy_blob(path, manifest["config"]["digest"], store)
        for layer in manifest["layers"]:
            _copy_blob(path, layer["digest"], store)
    except (OSError, ValueError, KeyError) as exc:
        raise BuildError(f"cannot read the OCI image {reference}: {exc}") from None
    found = {"digest": descriptor["digest"]}
    return load_from_store(store, found, reference, source)


def _copy_blob(layout: Path, digest: str, store: OciStore) -> bytes:
    """Copy one blob into the store (verified); return it when it is small (a manifest/config)."""
    store.blobs.import_file(layout / "blobs" / Path(*digest.split(":", 1)), digest)
    path = store.blobs.path(digest)
    return path.read_bytes() if path.stat().st_size <= SMALL else b""


def _from_oci_archive(path: Path, tag: str | None, store: OciStore, reference: str) -> BaseImage:
    with tempfile.TemporaryDirectory(prefix="pkgc-oci-archive-") as tmp:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise BuildError(f"cannot read the OCI archive {path}: {exc}") from None
        return _from_oci_layout(Path(tmp), tag, store, reference, "oci-archive")
