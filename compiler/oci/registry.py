"""Base images from a registry, pinned by digest, for the OCI back end (no daemon).

A base is read from a registry when it is written ``docker://HOST/REPO[:TAG|@sha256:...]``, or
written without ``docker://`` when its first component names a registry host (it has a '.' or a
':', or is ``localhost``) and no engine holds it. skopeo (the registry client pkgc already uses
for ``--push``: credentials, proxies and TLS are its own) reads the manifest's exact bytes, so the
digest is the registry's; an index picks the platform asked for (the host's by default, stored under
``stored_name``); the image is copied by that digest into a ``dir:`` folder, which keeps the
manifest and blobs as the registry serves them, and imported into
pkgc's store with every blob checked against its digest. A Docker (schema 2) manifest is stored as
its OCI equivalent over the same config and layer blobs. The store remembers the registry digest:
a tag that has not moved costs one manifest request, a ``@sha256:`` reference none; when the
registry does not answer, the copy the store holds under that name is used, with a note. Loopback
registries may speak plain HTTP (as for ``--push``)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compiler.cache.owner import staging_name
from compiler.oci.reference import TAG_RE
from compiler.oci.reference import COMPONENT_RE, HOST_RE, PushTarget
from compiler.oci.skopeo import skopeo_binary, skopeo_copy
from compiler.errors import BuildError, ResolveError
from compiler.oci.blobs import Blob
from compiler.oci.layer import GZIP_LAYER, TAR_LAYER
from compiler.oci.layout_reader import platform_entry
from compiler.oci.remote_blobs import record_pulled
from compiler.oci.store import CONFIG, MANIFEST, OciStore
from compiler.platform import Platform

REGISTRY_DIGEST = "io.pkgc.registry.digest"  # store annotation: the manifest digest the registry serves
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
USAGE = "expected docker://HOST/REPO[:TAG] or docker://HOST/REPO@sha256:<64 hex>, e.g. docker://localhost:5000/base:1"
INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_TYPES = {  # Docker schema 2 media types -> their OCI equivalents (same bytes)
    "application/vnd.docker.container.image.v1+json": CONFIG,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": GZIP_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar": TAR_LAYER,
}
Log = Callable[[str], None]


@dataclass(frozen=True)
class RegistryImage:
    """``registry/repository`` at a tag or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def tls_verify(self) -> bool:
        return not PushTarget(self.registry, self.repository).loopback

    def transport(self, digest: str | None = None) -> str:
        digest = digest or self.digest
        return f"docker://{self.name}@{digest}" if digest else f"docker://{self.name}:{self.tag or 'latest'}"


def parse_registry_image(reference: str) -> RegistryImage | None:
    """The registry image ``reference`` names, or None when it names none (a local name such as
    ``pkgc/base-debian-bookworm:latest``). A malformed registry reference is bad input."""
    explicit = reference.startswith("docker://")
    value = reference.removeprefix("docker://")
    registry, sep, rest = value.partition("/")
    if not (sep and ("." in registry or ":" in registry or registry == "localhost")):
        if explicit:
            why = f"'{registry}' is not a registry host" if sep else "names no registry host and repository"
            raise ResolveError(f"base image '{reference}': {why}; {USAGE}")
        return None
    rest, at, digest = rest.partition("@")
    repository, tag = rest, None
    if ":" in rest.rsplit("/", 1)[-1]:
        repository, _, tag = rest.rpartition(":")
    problem = None
    if not HOST_RE.match(registry):
        problem = f"'{registry}' is not a registry host"
    elif not repository or not all(COMPONENT_RE.match(part) for part in repository.split("/")):
        problem = f"'{repository}' is not a repository (lower case, digits, '.', '_', '-', '/')"
    elif tag is not None and not TAG_RE.match(tag):
        problem = f"'{tag}' is not a tag"
    elif at and not DIGEST_RE.match(digest):
        problem = f"'{digest}' is not a sha256 digest"
    if problem:
        raise ResolveError(f"base image '{reference}': {problem}; {USAGE}")
    return RegistryImage(registry, repository, tag, digest or None)


def stored_name(reference: str, platform: Platform) -> str:
    """The store's name for ``platform``'s image of ``reference``: the reference itself for the host's."""
    return reference if platform == Platform.host() else f"{reference}#{platform}"


def from_registry(image: RegistryImage, reference: str, store: OciStore, log: Log, platform: Platform | None = None) -> Blob:
    """Make sure the store holds ``platform``'s image of ``image`` (default: the host's; named
    ``stored_name(reference, platform)`` there); its manifest blob."""
    platform = platform or Platform.host()
    name = stored_name(reference, platform)
    if image.digest is not None:
        known = _stored_copy(store, image.digest)
        if known is not None:
            store.name([name], known, {REGISTRY_DIGEST: image.digest})
            return known
    try:
        digest = _platform_digest(image, platform)
    except BuildError as exc:
        fallback = store.find(name)
        if fallback is None or not store.blobs.has(fallback["digest"]):
            raise BuildError(f"base image {reference}: {exc}") from None
        log(f"{exc}; using the copy of {name} in pkgc's OCI store")
        return Blob(fallback["digest"], fallback["size"])
    known = _stored_copy(store, digest)
    if known is None:
        log(f"fetching base image {image.name}@{digest[:19]} from the registry")
        known = _fetch(image, digest, store, log)
    store.name([name, f"{image.name}@{digest}"], known, {REGISTRY_DIGEST: digest})
    return known


def _stored_copy(store: OciStore, digest: str) -> Blob | None:
    for entry in store.entries():
        if (entry.get("annotations") or {}).get(REGISTRY_DIGEST) == digest and store.blobs.has(entry["digest"]):
            return Blob(entry["digest"], entry["size"])
    return None


def _inspect_raw(image: RegistryImage, digest: str | None = None) -> bytes:
    """The manifest (or index) exactly as the registry serves it."""
    command = [skopeo_binary(), "inspect", "--raw", *([] if image.tls_verify else ["--tls-verify=false"]), image.transport(digest)]
    proc = subprocess.run(command, capture_output=True, check=False)
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        reason = _skopeo_message(lines[-1]) if lines else f"exit code {proc.returncode}"
        raise BuildError(f"the registry did not give the manifest of {image.transport(digest)}: {reason}")
    return proc.stdout


def _skopeo_message(line: str) -> str:
    """The ``msg`` of a logrus line (``time=... level=fatal msg="..."``), else the line."""
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    return match.group(1).replace('\\"', '"') if match else line


def _platform_digest(image: RegistryImage, platform: Platform) -> str:
    """The digest of ``platform``'s image manifest ``image`` names (through an index if need be)."""
    raw = _inspect_raw(image)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if image.digest is not None and digest != image.digest:
        raise BuildError(f"the registry served a manifest with digest {digest} for {image.transport()}")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise BuildError(f"the registry's manifest of {image.transport()} is not JSON") from None
    if manifest.get("mediaType") in INDEXES or "manifests" in manifest:
        entry = platform_entry(manifest.get("manifests"), platform)
        if entry is None or not DIGEST_RE.match(str(entry.get("digest"))):
            raise ResolveError(f"base image {image.transport()} has no {platform} image")  # bad input: no fallback
        return entry["digest"]
    return digest


def _fetch(image: RegistryImage, digest: str, store: OciStore, log: Log) -> Blob:
    with tempfile.TemporaryDirectory(prefix=staging_name("pkgc-registry-"), dir=_scratch(store)) as tmp:
        folder = Path(tmp) / "image"
        options = [] if image.tls_verify else ["--src-tls-verify=false"]
        copied = skopeo_copy(image.transport(digest), f"dir:{folder}", log, options)
        raw = (folder / "manifest.json").read_bytes()
        if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
            raise BuildError(f"the registry served {image.name}@{digest} with another manifest")
        manifest = json.loads(raw)
        size = 0
        for descriptor in [manifest["config"], *manifest["layers"]]:
            size += _import_blob(folder, descriptor["digest"], store)
        log(f"fetched {size / 1e6:.0f} MB of {image.name}@{digest[:19]} in {copied.seconds:.1f} s")
        record_pulled(store, image.registry, image.repository, manifest["layers"])  # a push to that registry mounts them
        if manifest.get("mediaType", MANIFEST) == MANIFEST and "config" in manifest:
            return store.blobs.put(raw)  # byte for byte: the stored digest is the registry's
        if manifest.get("mediaType") == DOCKER_MANIFEST:
            return store.put_json(_as_oci(manifest, image))
        raise BuildError(f"{image.name}@{digest}: manifest type {manifest.get('mediaType')!r} is not an image pkgc can use")


def _scratch(store: OciStore) -> Path:
    store.root.mkdir(parents=True, exist_ok=True)  # beside the blobs: one file system
    return store.root


def _import_blob(folder: Path, digest: str, store: OciStore) -> int:
    if not DIGEST_RE.match(digest):
        raise BuildError(f"the registry's manifest names the blob '{digest}'")
    hexdigest = digest.split(":", 1)[1]
    path = next((p for p in (folder / hexdigest, folder / f"{hexdigest}.tar") if p.is_file()), None)
    if path is None:
        raise BuildError(f"skopeo wrote no blob {digest}")
    try:
        return store.blobs.import_file(path, digest).size
    except ValueError as exc:
        raise BuildError(f"{exc} (from the registry)") from None


def _as_oci(manifest: dict, image: RegistryImage) -> dict:
    """A Docker schema 2 manifest as an OCI manifest over the same blobs."""

    def convert(descriptor: dict) -> dict:
        media = descriptor.get("mediaType", "")
        if media not in DOCKER_TYPES:
            raise BuildError(f"{image.name}: blob {descriptor.get('digest')} has media type {media!r}, which pkgc cannot use")
        return {"mediaType": DOCKER_TYPES[media], "digest": descriptor["digest"], "size": descriptor["size"]}

    return {"schemaVersion": 2, "mediaType": MANIFEST, "config": convert(manifest["config"]),
            "layers": [convert(layer) for layer in manifest["layers"]]}  # fmt: skip


def registry_base(reference: str, engine) -> bool:
    """Whether the base's facts come from its copy fetched from a registry: ``docker://``, or a
    registry host's reference that the engine (if one answers) does not hold and no base-image
    recipe describes (a recipe's facts win; the build still fetches the image by digest)."""
    from compiler.baseimages.recipes import metadata_for_image

    try:
        image = parse_registry_image(reference)
    except ResolveError:
        return True  # resolving it says why
    if image is None or metadata_for_image(reference) is not None:
        return False
    return reference.startswith("docker://") or engine is None or engine.image_info(reference) is None
