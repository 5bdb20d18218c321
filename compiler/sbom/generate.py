"""Generate the CycloneDX 1.6 JSON SBOM of a package from its lock, with cyclonedx-python-lib.

Deterministic: every bom-ref is derived from the content, there is no timestamp, and the serial
number is a UUIDv5 of the document's own content hash, so equal inputs give equal bytes.
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from urllib.parse import urlparse

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from compiler.lock.types import LockedPackage
from compiler.sbom.draft import DRAFT_SERIAL, finish, serial_of
from compiler.sbom.types import SbomInputs, TreeComponent

PROP = "pkgc:"  # namespace of pkgc's own properties
TREE_METHOD = "pkgc tree digest: sha256 over (path, executable bit, sha256) of every file"
ANACONDA_HOSTS = ("conda.anaconda.org", "repo.anaconda.com")


def package_ref(p: LockedPackage) -> str:
    return f"{p.manager}:{p.name}@{p.version}"


def _sha256(hex_digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=hex_digest)]


def _conda_purl(p: LockedPackage) -> PackageURL:
    """pkg:conda/NAME@VERSION?build=..&channel=..&subdir=..&type=conda|tar.bz2 (purl-spec's conda type)."""
    url = urlparse(p.url)
    path = PurePosixPath(url.path)
    subdir = path.parent.name
    channel_path = str(path.parent.parent).strip("/")
    if url.hostname in ANACONDA_HOSTS:
        channel = channel_path.removeprefix("pkgs/")  # conda-forge, main, ...
    else:
        channel = f"{url.scheme}://{url.netloc}/{channel_path}" if url.netloc else f"{url.scheme}:///{channel_path}"
    qualifiers = {"build": p.build or "", "channel": channel, "subdir": subdir,
                  "type": "conda" if p.filename.endswith(".conda") else "tar.bz2"}  # fmt: skip
    return PackageURL(type="conda", name=p.name, version=p.version, qualifiers={k: v for k, v in qualifiers.items() if v})


def _package(p: LockedPackage) -> Component:
    purl = _conda_purl(p) if p.manager == "conda" else PackageURL(type="pypi", name=p.name, version=p.version)
    properties = [Property(name=f"{PROP}manager", value=p.manager), Property(name=f"{PROP}file", value=p.filename)]
    refs = [ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(p.url))]
    if p.sdist is not None:  # a wheel pkgc built on the host from a source distribution
        properties.append(Property(name=f"{PROP}built-from", value=f"{p.sdist.filename} sha256:{p.sdist.sha256}"))
    return Component(
        name=p.name, version=p.version, type=ComponentType.LIBRARY, bom_ref=package_ref(p), purl=purl,
        hashes=_sha256(p.sha256), properties=properties, external_references=refs,
    )  # fmt: skip


def _tree(tree: TreeComponent, kind: ComponentType, ref: str, role: str) -> Component:
    properties = [Property(name=f"{PROP}role", value=role), Property(name=f"{PROP}path", value=tree.path),
                  Property(name=f"{PROP}digest-method", value=TREE_METHOD)]  # fmt: skip
    return Component(name=tree.name, version=tree.version, type=kind, bom_ref=ref, hashes=_sha256(tree.digest),
                     properties=properties)  # fmt: skip


def _base_image(sbom: SbomInputs) -> Component:
    hashes, properties = [], [Property(name=f"{PROP}role", value="base-image")]
    if sbom.base_image_id:
        properties.append(Property(name=f"{PROP}image-id", value=sbom.base_image_id))
        hashes = _sha256(sbom.base_image_id.removeprefix("sha256:"))  # the image id: sha256 of its config, which both back ends know
    packages = [_base_package(p) for p in sbom.base_packages]  # nested: the base's, not the lock's
    return Component(name=sbom.base_image, type=ComponentType.CONTAINER, bom_ref="base-image", hashes=hashes,
                     properties=properties, components=packages)  # fmt: skip


def _base_package(p) -> Component:
    """A package the base image's own Python has: no file pkgc installed, so no hash; where it is."""
    return Component(
        name=p.name, version=p.version, type=ComponentType.LIBRARY, bom_ref=f"base-image:pip:{p.name}@{p.version}@{p.site}",
        purl=PackageURL(type="pypi", name=p.name, version=p.version),
        properties=[Property(name=f"{PROP}role", value="base-image package"), Property(name=f"{PROP}path", value=p.site)],
    )  # fmt: skip


def _bom(sbom: SbomInputs, serial: uuid.UUID) -> Bom:
    lock = sbom.lock
    root = Component(
        name=sbom.package, type=ComponentType.CONTAINER, bom_ref="package",
        properties=[Property(name=f"{PROP}model.mode", value=sbom.mode),
                    Property(name=f"{PROP}environment.strategy", value=lock.strategy),
                    Property(name=f"{PROP}python", value=lock.python),
                    Property(name=f"{PROP}lock.inputs", value=lock.inputs_hash)],
    )  # fmt: skip
    model_role = "model (copied in)" if sbom.mode == "copy" else "model (expected as a read-only mount)"
    model = _tree(sbom.model, ComponentType.MACHINE_LEARNING_MODEL, "model", model_role)
    model.properties.add(Property(name=f"{PROP}model.type", value=sbom.model_type))
    parts = [_base_image(sbom), model]
    if sbom.code is not None:
        parts.append(_tree(sbom.code, ComponentType.APPLICATION, "code", "scoring code"))
    parts += [_tree(t, ComponentType.DATA, f"input:{t.path}", "input") for t in sbom.inputs]
    packages = [_package(p) for p in lock.packages]
    tool = Component(name="pkgc", version=sbom.pkgc_version, type=ComponentType.APPLICATION, bom_ref="pkgc")
    metadata = BomMetaData(tools=ToolRepository(components=[tool]), component=root)
    metadata.timestamp = None  # nothing per build
    bom = Bom(components=parts + packages, metadata=metadata, serial_number=serial)
    bom.register_dependency(root, parts + packages)
    return bom


def sbom_draft(sbom: SbomInputs) -> str:
    """The document with the placeholder serial ``DRAFT_SERIAL`` (compiler/sbom/draft.py finishes it)."""
    return JsonV1Dot6(_bom(sbom, DRAFT_SERIAL)).output_as_string(indent=2)


def generate_sbom(sbom: SbomInputs) -> bytes:
    """The SBOM as UTF-8 JSON bytes (CycloneDX 1.6), the same bytes for the same inputs.

    Rendered once: the serial number is the only thing that differs between the draft (hashed for
    the serial) and the document, so ``finish`` replaces the draft's one ``serialNumber`` value; only
    a draft that shows the placeholder more than once is rendered again with its serial."""
    draft = sbom_draft(sbom)
    done = finish(draft)
    if done is not None:
        return done
    return (JsonV1Dot6(_bom(sbom, serial_of(draft))).output_as_string(indent=2) + "\n").encode()
