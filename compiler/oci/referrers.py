"""OCI 1.1 referrers: artifacts (an SBOM, an attestation) attached to an image by their ``subject``.

Each artifact is an image manifest with an ``artifactType``, the empty config
(``application/vnd.oci.empty.v1+json``) and one layer holding its bytes. Where they go:

- ``oci:DIR``: its blobs are added, and so is the image index the distribution spec's fallback tag
  ``sha256-<subject hex>`` would name (every referrer's descriptor, with its ``artifactType``), as a
  blob. ``index.json`` keeps one entry, the image, whose annotation ``io.pkgc.referrers`` names that
  index's digest: a layout with one entry is what ``skopeo inspect oci:DIR`` and ``skopeo copy``
  read with no tag (skopeo 1.9 refuses an index.json listing the referrers beside the image: "more
  than one image in oci"). Readers also accept referrers listed in ``index.json`` itself (earlier
  pkgc, ``oras attach --oci-layout``).
- ``oci-archive:FILE``: the archive is rewritten with the same additions.
- a registry: pushed by skopeo (credentials stay skopeo's) as the tag-schema fallback of the
  distribution spec: an image index of the referrers tagged ``sha256-<subject hex>``. A registry with
  the referrers API indexes each pushed manifest by its ``subject`` as well.

The manifests are written in pkgc's canonical JSON, so equal artifacts have equal digests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from compiler.oci.skopeo import LogSink, skopeo_binary, skopeo_copy
from compiler.oci.store import INDEX, LAYOUT, MANIFEST, canonical_json

EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
TAG_PREFIX = "sha256-"
REFERRERS_ANNOTATION = "io.pkgc.referrers"  # on a layout's image entry: the digest of its referrers index blob
REFERRERS_SIZE_ANNOTATION = "io.pkgc.referrers.size"  # and its size, so a reader bounds the read by it
INDEX_LIMIT = 4 << 20  # index.json and referrers indexes pkgc reads back while attaching


@dataclass(frozen=True)
class Artifact:
    """One thing to attach: its ``artifactType``, the media type of its single layer, its bytes."""

    artifact_type: str
    media_type: str
    data: bytes
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    @classmethod
    def of(cls, media_type: str, data: bytes) -> "Descriptor":
        return cls(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))

    def as_dict(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Referrer:
    """An artifact as a manifest ready to write: the manifest bytes and every blob it names."""

    artifact: Artifact
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> bytes (the empty config and the layer)

    @property
    def descriptor(self) -> dict:
        entry = Descriptor.of(MANIFEST, self.manifest).as_dict()
        entry["artifactType"] = self.artifact.artifact_type
        if self.artifact.annotations:
            entry["annotations"] = dict(self.artifact.annotations)
        return entry

    @property
    def digest(self) -> str:
        return self.descriptor["digest"]


def referrer(artifact: Artifact, subject: Descriptor) -> Referrer:
    """The artifact manifest of ``artifact`` whose subject is the image manifest ``subject``."""
    config = Descriptor.of(EMPTY, EMPTY_DATA)
    layer = Descriptor.of(artifact.media_type, artifact.data)
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": artifact.artifact_type,
        "config": {**config.as_dict(), "data": base64.b64encode(EMPTY_DATA).decode()},
        "layers": [layer.as_dict()], "subject": subject.as_dict(),
    }  # fmt: skip
    if artifact.annotations:
        manifest["annotations"] = dict(artifact.annotations)
    return Referrer(artifact, canonical_json(manifest), {config.digest: EMPTY_DATA, layer.digest: artifact.data})


def referrers(artifacts: tuple[Artifact, ...], subject: Descriptor) -> tuple[Referrer, ...]:
    return tuple(referrer(a, subject) for a in artifacts)


def _blob_items(refs: tuple[Referrer, ...]) -> dict[str, bytes]:
    items: dict[str, bytes] = {}
    for ref in refs:
        items.update(ref.blobs)
        items[ref.digest] = ref.manifest
    return items


def _subjects(refs: tuple[Referrer, ...]) -> dict[str, tuple[Referrer, ...]]:
    """``refs`` grouped by the digest of the manifest each is attached to."""
    groups: dict[str, list[Referrer]] = {}
    for ref in refs:
        groups.setdefault(json.loads(ref.manifest)["subject"]["digest"], []).append(ref)
    return {subject: tuple(group) for subject, group in groups.items()}


def _with_referrers(index: dict, refs: tuple[Referrer, ...], read_blob: Callable[[str], bytes]) -> tuple[dict, dict[str, bytes]]:
    """``index`` (a layout's index.json) with ``refs`` attached, and the new blobs that takes.

    Each subject's entry gets (or keeps) the annotation naming its referrers index: the referrers it
    named before (in their order), then ``refs``. ``read_blob(digest)`` reads a blob of the layout."""
    manifests = [dict(m) for m in index.get("manifests", [])]
    blobs: dict[str, bytes] = {}
    for subject, group in _subjects(refs).items():
        entries = [m for m in manifests if m.get("digest") == subject and "artifactType" not in m]
        if not entries:
            raise ValueError(f"index.json does not list the image {subject}")
        earlier_digest = (entries[0].get("annotations") or {}).get(REFERRERS_ANNOTATION)
        earlier = json.loads(read_blob(earlier_digest)).get("manifests", []) if earlier_digest else []
        data = canonical_json(merged_index(earlier, group))
        digest = Descriptor.of(INDEX, data).digest
        blobs[digest] = data
        for entry in entries:
            entry["annotations"] = {**(entry.get("annotations") or {}), REFERRERS_ANNOTATION: digest,
                                    REFERRERS_SIZE_ANNOTATION: str(len(data))}  # fmt: skip
    return {**index, "manifests": manifests}, blobs


def _write_blobs(folder: Path, items: dict[str, bytes]) -> int:
    """Write the blobs a layout lacks; return the bytes written."""
    added = 0
    for digest, data in items.items():
        path = folder / "blobs" / "sha256" / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)
            added += len(data)
    return added


def _read_json_blob(path: Path) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(INDEX_LIMIT + 1)
    if len(data) > INDEX_LIMIT:
        raise ValueError(f"{path} is larger than {INDEX_LIMIT} bytes")
    return data


def attach_to_layout(folder: Path, refs: tuple[Referrer, ...]) -> int:
    """Add ``refs`` to the OCI layout ``folder`` (one written by pkgc or skopeo); return the bytes added."""
    index = json.loads(_read_json_blob(folder / "index.json"))
    updated, indexes = _with_referrers(index, refs, lambda d: _read_json_blob(folder / "blobs" / "sha256" / d.split(":", 1)[1]))
    added = _write_blobs(folder, {**_blob_items(refs), **indexes})
    (folder / "index.json").write_bytes(canonical_json(updated))
    return added


def _info(name: str, size: int, like: tarfile.TarInfo | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, 0o644, 0, 0, 0
    if like is not None:
        info.mode, info.mtime = like.mode, like.mtime
    return info


def attach_to_archive(path: Path, refs: tuple[Referrer, ...]) -> int:
    """Rewrite the OCI archive ``path`` with ``refs`` added (blobs, then ``index.json`` last)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with tarfile.open(path) as source, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as target:
            members = {m.name.removeprefix("./"): m for m in source.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                if name not in members or members[name].size > INDEX_LIMIT:
                    raise ValueError(f"{path}: {name} is missing or larger than {INDEX_LIMIT} bytes")
                return source.extractfile(members[name]).read()

            index_info = members.get("index.json")
            index, indexes = _with_referrers(json.loads(read("index.json")), refs, lambda d: read(f"blobs/sha256/{d.split(':', 1)[1]}"))
            new_blobs = {f"blobs/sha256/{d.split(':', 1)[1]}": data for d, data in {**_blob_items(refs), **indexes}.items()}
            for member in source:
                name = member.name.removeprefix("./")
                if name == "index.json":
                    continue
                new_blobs.pop(name, None)
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
            for name in sorted(new_blobs):
                target.addfile(_info(name, len(new_blobs[name])), io.BytesIO(new_blobs[name]))
            data = canonical_json(index)
            target.addfile(_info("index.json", len(data), index_info), io.BytesIO(data))
        added = os.stat(tmp).st_size - path.stat().st_size
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return added


def fallback_tag(subject_digest: str) -> str:
    """The distribution spec's referrers tag schema: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    return TAG_PREFIX + subject_digest.split(":", 1)[1]


def index_without_types(refs: tuple[Referrer, ...]) -> dict:
    """The referrers index skopeo 1.9 can copy unchanged: descriptors without ``artifactType``."""
    manifests = [{k: v for k, v in r.descriptor.items() if k != "artifactType"} for r in refs]
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}


@dataclass(frozen=True)
class PushedReferrers:
    """The fallback tag pushed, the digest of its index, and whether that index names artifact types."""

    tag: str
    digest: str
    artifact_types: bool
    kept: int = 0  # referrers the tag listed before (another build's, another tool's), still listed

    def as_dict(self) -> dict:
        return {"tag": self.tag, "digest": self.digest, "artifact_types": self.artifact_types, "kept": self.kept}


def merged_index(earlier: list[dict], refs: tuple[Referrer, ...]) -> dict:
    """The referrers index listing what the fallback tag already listed (in its order), then ``refs``."""
    ours = {r.digest for r in refs}
    kept = [m for m in earlier if isinstance(m, dict) and m.get("digest") not in ours]
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": kept + [r.descriptor for r in refs]}


def _listed(repository: str, tag: str, tls_verify: bool) -> list[dict]:
    """The descriptors the registry's ``repository:tag`` index lists now (none when there is no such tag)."""
    command = [skopeo_binary(), "inspect", "--raw", *([] if tls_verify else ["--tls-verify=false"]), f"docker://{repository}:{tag}"]
    proc = subprocess.run(command, capture_output=True, check=False)
    if proc.returncode != 0:
        return []
    try:
        index = json.loads(proc.stdout)
    except ValueError:
        return []
    manifests = index.get("manifests") if isinstance(index, dict) else None
    return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


def push_referrers(refs: tuple[Referrer, ...], subject_digest: str, repository: str, tls_verify: bool, log: LogSink) -> PushedReferrers:
    """Push ``refs`` and their index as ``REPOSITORY:sha256-<hex>``.

    ``skopeo copy --all --preserve-digests`` sends every artifact manifest byte for byte, and the index;
    skopeo 1.9 (Debian 12) refuses to copy an index whose descriptors carry ``artifactType`` unchanged,
    so it sends the index without them, and the complete index is then PUT directly (registry API, no
    credentials: a loopback or anonymous-push registry). When that PUT is refused, the index without
    artifact types stays (clients read each manifest's own ``artifactType``) and the result says so.
    Referrers the tag listed before are kept in the complete index (the distribution spec's update rule)."""
    tag = fallback_tag(subject_digest)
    earlier = _listed(repository, tag, tls_verify)
    with tempfile.TemporaryDirectory(prefix="pkgc-referrers-") as scratch:
        layout = Path(scratch) / "layout"
        (layout / "blobs" / "sha256").mkdir(parents=True)
        (layout / "oci-layout").write_bytes(canonical_json(LAYOUT))
        index = canonical_json(index_without_types(refs))
        entry = Descriptor.of(INDEX, index)
        _write_blobs(layout, {**_blob_items(refs), entry.digest: index})
        top = {"schemaVersion": 2, "mediaType": INDEX,
               "manifests": [{**entry.as_dict(), "annotations": {"org.opencontainers.image.ref.name": tag}}]}  # fmt: skip
        (layout / "index.json").write_bytes(canonical_json(top))
        options = ["--all", "--preserve-digests"] + ([] if tls_verify else ["--dest-tls-verify=false"])
        copied = skopeo_copy(f"oci:{layout}:{tag}", f"docker://{repository}:{tag}", log, options)
    complete = merged_index(earlier, refs)
    kept = len(complete["manifests"]) - len(refs)
    if put_manifest(repository, tag, canonical_json(complete), INDEX, tls_verify, log):
        return PushedReferrers(tag, Descriptor.of(INDEX, canonical_json(complete)).digest, True, kept)
    return PushedReferrers(tag, copied.digest, False)


def put_manifest(repository: str, tag: str, data: bytes, media_type: str, tls_verify: bool, log: LogSink) -> bool:
    """PUT ``data`` as ``repository:tag`` through the registry API without credentials; False if refused."""
    import urllib.error
    import urllib.request  # only a push needs it (about 20 ms to import)

    registry, _, name = repository.partition("/")
    url = f"{'https' if tls_verify else 'http'}://{registry}/v2/{name}/manifests/{tag}"
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": media_type})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}) if not tls_verify else urllib.request.ProxyHandler())
    try:
        with opener.open(request, timeout=30) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as exc:
        log(f"PUT {url}: {getattr(exc, 'code', '') or exc}; the referrers index stays without artifact types")
        return False


def _listed_referrers(index: dict, subject_digest: str, read_blob) -> list:
    """The descriptors that may be referrers of ``subject_digest``: those of the referrers index the
    subject's entry names (``io.pkgc.referrers``), then the artifacts ``index.json`` lists itself."""
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
    listed: list = []
    for entry in entries:
        annotations = entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {}
        named, size = annotations.get(REFERRERS_ANNOTATION), annotations.get(REFERRERS_SIZE_ANNOTATION)
        if entry.get("digest") == subject_digest and "artifactType" not in entry and named is not None:
            stated = int(size) if isinstance(size, str) and size.isdigit() and len(size) < 12 else None
            referrers_index = read_blob({"digest": named, "size": stated})  # the reader checks both
            manifests = referrers_index.get("manifests")
            listed += manifests if isinstance(manifests, list) else []
    return listed + [e for e in entries if "artifactType" in e]


def layout_referrers(index: dict, subject_digest: str, read_blob) -> list[tuple[dict, dict]]:
    """(descriptor, manifest) of every referrer of ``subject_digest`` a layout's ``index`` reaches,
    each digest once.

    ``read_blob(descriptor) -> dict`` reads and checks a manifest (the caller owns untrusted reading)."""
    found, seen = [], {subject_digest}
    for entry in _listed_referrers(index, subject_digest, read_blob):
        if not isinstance(entry, dict) or entry.get("mediaType") != MANIFEST or entry.get("digest") in seen:
            continue
        if "artifactType" not in entry:
            continue  # an image, not an artifact: its subject is not looked at
        seen.add(entry.get("digest"))
        manifest = read_blob(entry)
        subject = manifest.get("subject")
        if isinstance(subject, dict) and subject.get("digest") == subject_digest:
            found.append((entry, manifest))
    return found


# (layout folder, tag in it, manifest digest) -> the referrers to attach to that image
Attest = Callable[[Path, str, str], tuple[Referrer, ...]]
