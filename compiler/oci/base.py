"""The base image of one platform, by digest: from the engine (the host's platform only; saved and
imported into the store once per image id), from an ``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]``
reference, from a registry (``docker://HOST/REPO:TAG``, or ``HOST/REPO:TAG`` no engine holds:
``registry.py``), or from pkgc's OCI store (where ``pkgc base-image build --platform`` writes an index
with one image per platform). An index gives the platform's image; an image of another architecture
is refused, naming the command that builds the right one. An index the store names wins over the
engine's image of the same name, so a build gives one digest with an engine answering or none.

Layers imported from the engine are compressed with pkgc's own deterministic gzip, so a base image
has the same digests whether it came from the engine or was written by ``pkgc base-image build``
with no engine (the layer tars are the same bytes)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from compiler.engines.base import Engine
from compiler.errors import BuildError, ResolveError, excerpt
from compiler.oci.blobs import Blob
from compiler.oci.compress import compressor
from compiler.oci.layer import GZIP_LAYER, LayerBlob
from compiler.oci.layout_reader import LayoutError, MissingPlatform, mapping, open_layout, parse_reference, platform_entry
from compiler.oci.store import CONFIG, ENGINE_ID, INDEX, MANIFEST, REF_NAME, OciStore, canonical_json
from compiler.platform import Platform

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
        """The config's labels (an OCI config maps strings to strings; anything else is not a label)."""
        labels = mapping(mapping(self.config.get("config")).get("Labels"))
        return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}


split_oci_reference = parse_reference  # ``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]`` -> (kind, path, tag) or None


def load_from_store(store: OciStore, descriptor: dict, reference: str, source: str) -> BaseImage:
    manifest = store.read_json(descriptor["digest"])
    config = store.read_json(manifest["config"]["digest"])
    problem = config_problem(config, len(manifest["layers"]))
    if problem:
        raise ResolveError(f"base image {excerpt(reference, 200)}: its config's {problem}")
    return BaseImage(reference, descriptor["digest"], manifest, config, source)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# what the fields a package's config takes from its base's must be (absent or null: not set)
_FIELDS = {
    "Env": ("a list of strings", _strings), "Entrypoint": ("a list of strings", _strings), "Cmd": ("a list of strings", _strings),
    "Labels": ("an object of strings", lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values())),
    "ExposedPorts": ("an object", lambda v: isinstance(v, dict)), "Volumes": ("an object", lambda v: isinstance(v, dict)),
    "StopSignal": ("a string", lambda v: isinstance(v, str)),
}  # fmt: skip


def config_problem(config: dict, layers: int) -> str | None:
    """What is wrong with a base image's config for a package to be built on it (None: nothing): the
    fields the package's config takes from it must have their OCI types, and one diff_id per layer."""
    if not isinstance(config, dict):
        return "document is not an object"
    diff_ids = mapping(config.get("rootfs")).get("diff_ids")
    if not _strings(diff_ids) or len(diff_ids) != layers:
        return f"rootfs.diff_ids is not a list of {layers} digests, one per layer"
    if not all(isinstance(config.get(k), (str, type(None))) for k in ("architecture", "os")):
        return "architecture or os is not a string"
    history = config.get("history")
    if history is not None and not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        return "history is not a list of objects"
    inner = config.get("config")
    if inner is None:
        return None
    if not isinstance(inner, dict):
        return "config is not an object"
    for key, (kind, fits) in _FIELDS.items():
        if inner.get(key) is not None and not fits(inner[key]):
            return f"config.{key} is not {kind}"
    return None


def resolve_base(reference: str, store: OciStore, engine: Engine | None, log, platform: Platform | None = None) -> BaseImage:
    """Find ``platform``'s image of ``reference`` (default: the host's) and make sure its blobs are
    in ``store``; an image of another platform is a ResolveError saying how to get the right one."""
    platform = platform or Platform.host()
    base = _find_base(reference, store, engine, log, platform)
    stated = base.config.get("architecture")
    if Platform.from_oci(base.config) != platform and (stated or platform != Platform.host()):  # none stated: the host's
        raise ResolveError(missing_platform(reference, platform))
    return base


def missing_platform(reference: str, platform: Platform) -> str:
    """The one line saying ``reference`` has no ``platform`` image, and how to get one."""
    from compiler.baseimages.recipes import metadata_for_image

    recipe = metadata_for_image(reference) if not reference.startswith(("oci:", "oci-archive:", "docker://")) else None
    name = recipe.name if recipe is not None else "NAME"
    hint = f"build it with 'pkgc base-image build {name} --platform {platform}'"
    if recipe is None:
        hint = f"name a base whose index has one, or {hint}"
    return f"base image {excerpt(reference, 200)} has no {platform} image; {hint}"


def _find_base(reference: str, store: OciStore, engine: Engine | None, log, platform: Platform) -> BaseImage:
    if split_oci_reference(reference) is not None:
        return _from_oci(reference, store, platform)
    from compiler.oci.registry import from_registry, parse_registry_image

    registry = parse_registry_image(reference)
    indexed = _indexed(store, reference, platform)
    if indexed is not None:  # pkgc base-image build wrote it: the same image with the engine or without one
        return load_from_store(store, indexed, reference, "store")
    if engine is not None and not reference.startswith("docker://") and platform == Platform.host():
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
            # so a build with no engine finds it too (an index pkgc base-image build --platform wrote stays)
            if found is None or (found["digest"] != known["digest"] and found.get("mediaType") != INDEX):
                size = store.blobs.path(known["digest"]).stat().st_size
                store.name([reference], Blob(known["digest"], size), {ENGINE_ID: info.id})
            return load_from_store(store, known, reference, "engine")
    if registry is not None:
        manifest = from_registry(registry, reference, store, log, platform)
        return load_from_store(store, {"digest": manifest.digest}, reference, "registry")
    known = store.find(reference)
    if known is not None and store.blobs.has(known["digest"]):
        if known.get("mediaType") == INDEX:  # pkgc base-image build --platform: one image per platform
            entry = platform_entry(store.read_json(known["digest"]).get("manifests"), platform)
            if entry is None or not store.blobs.has(entry["digest"]):
                raise ResolveError(missing_platform(reference, platform))
            known = entry
        return load_from_store(store, known, reference, "store")
    where = "the engine nor in" if engine is not None else "pkgc's OCI store (no engine answers):"
    raise BuildError(
        f"base image {reference} is neither in {where} {store.root}; "
        "build it with 'pkgc base-image build', or name an oci:DIR or oci-archive:FILE base"
    )


def _indexed(store: OciStore, reference: str, platform: Platform) -> dict | None:
    """``platform``'s entry of the image index the store names ``reference`` (what ``pkgc base-image
    build`` writes), when its manifest is here; None for any other name or none."""
    if reference.startswith("docker://"):
        return None
    found = store.find(reference)
    if found is None or found.get("mediaType") != INDEX or not store.blobs.has(found["digest"]):
        return None
    entry = platform_entry(store.read_json(found["digest"]).get("manifests"), platform)
    return entry if entry is not None and store.blobs.has(entry["digest"]) else None


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
    finally:
        deflate.close()
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
    manifests = index.get("manifests")
    manifests = [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
    if tag is not None:
        manifests = [m for m in manifests if mapping(m.get("annotations")).get(REF_NAME) == tag]
    else:  # artifacts attached as referrers (an SBOM, attestations) are not images
        manifests = [m for m in manifests if "artifactType" not in m]
    if len(manifests) != 1:
        what = f"no image tagged '{excerpt(tag)}'" if tag and not manifests else f"{len(manifests)} images; name one with :TAG"
        raise ResolveError(f"{where}: {what}")
    return manifests[0]


def _from_oci(reference: str, store: OciStore, platform: Platform) -> BaseImage:
    """Copy the image an ``oci:DIR[:TAG]``/``oci-archive:FILE[:TAG]`` names (an index gives ``platform``'s)
    into the store: read in place through the one checked layout reader (only regular files, every
    read bounded by its descriptor, every digest checked while copying). Bad input is a ResolveError
    naming the member; a store that cannot be written, a BuildError naming the store."""
    try:
        with open_layout(reference) as layout:
            layout.check_layout_file()
            descriptor, manifest = layout.image_manifest(_pick_manifest(layout.json("index.json"), layout.tag, reference), platform)
            config = layout.blob_json(manifest["config"], "the manifest's config")
            problem = config_problem(config, len(manifest["layers"]))
            if problem:
                raise layout.error(f"blobs/sha256/{manifest['config']['digest'][7:]}", f"the image config's {problem}")
            try:
                for blob in [manifest["config"], *manifest["layers"], descriptor]:
                    if not store.blobs.has(blob["digest"]):
                        with layout.open_blob(blob) as stream:
                            store.blobs.import_stream(stream, blob["digest"])
            except OSError as exc:
                raise BuildError(f"cannot write pkgc's OCI store {store.root}: {exc.strerror or exc}") from None
    except MissingPlatform:
        raise ResolveError(missing_platform(reference, platform)) from None
    except LayoutError as exc:
        raise ResolveError(f"cannot read the OCI image {excerpt(reference, 200)}: {exc.detail}") from None
    return load_from_store(store, descriptor, reference, "oci" if reference.startswith("oci:") else "oci-archive")
