"""Base images from a real registry (Debian's docker-registry on loopback), no engine: fetched with
skopeo by digest into pkgc's store (OCI manifests byte for byte, Docker schema 2 ones as their OCI
equivalent over the same blobs, an index's linux/amd64 image), a pinned digest found in the store
with no request, and the stored copy used when the registry stops answering."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from compiler.errors import BuildError, ResolveError
from compiler.oci.base import resolve_base
from compiler.backends.oci.config import timestamp
from compiler.oci.layer import Entry, write_layer
from compiler.oci.registry import RegistryImage, parse_registry_image
from compiler.oci.store import CONFIG, INDEX, MANIFEST, OciStore
from tests.e2e.registry import start_registry

pytestmark = pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("docker-registry")),
                                reason="skopeo and docker-registry come with scripts/ensure-engine.sh")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put_image(store: OciStore, arch: str) -> str:
    """A one-layer image for ``arch`` in ``store``; its manifest digest."""
    entries = [Entry("etc/arch", "file", data=arch.encode())]
    if arch == "amd64":
        entries.append(Entry("usr/local/bin/python3.12", "file", 0o755, data=b"#!/bin/false\n"))
    layer = write_layer(entries, store.blobs)
    config = store.put_json({"architecture": arch, "os": "linux", "created": timestamp(0), "config": {"Labels": {"arch": arch}},
                             "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}})  # fmt: skip
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [layer.descriptor()],
                               "config": {"mediaType": CONFIG, "digest": config.digest, "size": config.size}})  # fmt: skip
    return manifest.digest


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """An OCI layout: ``amd64`` and ``arm64`` images and a ``multi`` index of both."""
    store = OciStore(tmp_path_factory.mktemp("source") / "layout")
    digests = {arch: put_image(store, arch) for arch in ("amd64", "arm64")}
    index = store.put_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": d, "size": store.blobs.path(d).stat().st_size, "platform": {"os": "linux", "architecture": a}}
        for a, d in sorted(digests.items(), reverse=True)]})  # fmt: skip
    entries = [{"mediaType": MANIFEST, "digest": d, "size": store.blobs.path(d).stat().st_size,
                "annotations": {"org.opencontainers.image.ref.name": a}} for a, d in digests.items()]  # fmt: skip
    entries.append({"mediaType": INDEX, "digest": index.digest, "size": index.size,
                    "annotations": {"org.opencontainers.image.ref.name": "multi"}})  # fmt: skip
    (store.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (store.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return store.root


def push(source: Path, tag: str, target: str, *options: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *options, f"oci:{source}:{tag}", f"docker://{target}"],
                   check=True, capture_output=True)  # fmt: skip


@pytest.fixture(scope="module")
def registry(tmp_path_factory, source):
    reg = start_registry(tmp_path_factory.mktemp("registry"), free_port())
    push(source, "amd64", f"{reg.host}/base/oci:1")
    push(source, "amd64", f"{reg.host}/base/v2s2:1", "--format", "v2s2")
    push(source, "multi", f"{reg.host}/base/multi:1", "--all")
    yield reg
    reg.stop()


def served_digest(registry, repository: str) -> str:
    status, _body, headers = registry.manifest(repository, "1")
    assert status == 200
    return headers["Docker-Content-Digest"]


def test_registry_references_are_parsed_or_refused():
    assert parse_registry_image("pkgc/base-debian-bookworm:latest") is None  # a local name: store or engine
    assert parse_registry_image("python:3.11-slim") is None
    assert parse_registry_image("localhost:5000/base/oci:1") == RegistryImage("localhost:5000", "base/oci", "1")
    digest = "sha256:" + "a" * 64
    assert parse_registry_image(f"docker://reg.example/x@{digest}") == RegistryImage("reg.example", "x", None, digest)
    assert parse_registry_image("docker://localhost/x").transport() == "docker://localhost/x:latest"
    for bad, why in (("docker://base:1", "names no registry host"), ("docker://base/x:1", "not a registry host"), ("docker://reg.example/X:1", "not a repository"),
                     ("reg.example/x@sha256:12", "not a sha256 digest"), ("docker://reg.example/x:-bad", "not a tag")):  # fmt: skip
        with pytest.raises(ResolveError, match=why):
            parse_registry_image(bad)


def test_an_oci_manifest_is_stored_byte_for_byte(registry, source, tmp_path):
    store, notes = OciStore(tmp_path / "store"), []
    base = resolve_base(f"docker://{registry.host}/base/oci:1", store, None, notes.append)
    assert base.source == "registry" and base.manifest_digest == served_digest(registry, "base/oci")
    assert base.config["architecture"] == "amd64" and any("fetching base image" in n for n in notes)
    again = resolve_base(f"{registry.host}/base/oci:1", store, None, notes.append)  # no docker://, no engine
    assert again.manifest_digest == base.manifest_digest and len([n for n in notes if "fetching" in n]) == 1
    # pinned by digest: found in the store with no request (this registry host does not exist)
    pinned = resolve_base(f"docker://127.0.0.1:9/base/oci@{base.manifest_digest}", store, None, notes.append)
    assert pinned.manifest_digest == base.manifest_digest


def test_facts_of_a_registry_base_without_pkgc_labels_come_from_its_layers(registry, tmp_path):
    from compiler.backends.oci.facts import stored_base_facts
    from compiler.oci.registry import registry_base

    facts = stored_base_facts(f"docker://{registry.host}/base/oci:1", tmp_path, required=True)
    assert facts is not None and facts.python == "3.12" and "in its layers (registry)" in facts.how
    assert registry_base(f"{registry.host}/base/oci:1", None) and registry_base("docker://base:1", None)
    assert not registry_base("pkgc/base-debian-bookworm:latest", None)
    assert not registry_base("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest", None)  # its recipe's facts win


def test_a_docker_manifest_becomes_its_oci_equivalent(registry, source, tmp_path):
    store = OciStore(tmp_path / "store")
    base = resolve_base(f"docker://{registry.host}/base/v2s2:1", store, None, lambda _m: None)
    _status, body, _headers = registry.manifest("base/v2s2", "1")
    served = json.loads(body)
    assert served["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert base.manifest["mediaType"] == MANIFEST and base.manifest["config"]["mediaType"] == CONFIG
    assert [l["digest"] for l in base.layers] == [l["digest"] for l in served["layers"]]
    assert base.manifest["config"]["digest"] == served["config"]["digest"]
    assert store.find(f"{registry.host}/base/v2s2@{served_digest(registry, 'base/v2s2')}") is not None


def test_an_index_gives_its_linux_amd64_image(registry, source, tmp_path):
    base = resolve_base(f"docker://{registry.host}/base/multi:1", OciStore(tmp_path / "store"), None, lambda _m: None)
    assert base.config["architecture"] == "amd64" and base.labels == {"arch": "amd64"}


def test_the_stored_copy_serves_when_the_registry_stops_answering(source, tmp_path):
    reg = start_registry(tmp_path / "registry", free_port())
    try:
        push(source, "amd64", f"{reg.host}/base/gone:1")
        store, notes = OciStore(tmp_path / "store"), []
        first = resolve_base(f"docker://{reg.host}/base/gone:1", store, None, notes.append)
    finally:
        reg.stop()
    again = resolve_base(f"docker://{reg.host}/base/gone:1", store, None, notes.append)
    assert again.manifest_digest == first.manifest_digest
    assert "using the copy of" in notes[-1]
    with pytest.raises(BuildError, match="the registry did not give the manifest"):
        resolve_base(f"docker://{reg.host}/base/never:1", store, None, notes.append)


def test_an_index_gives_the_platform_asked_for_and_an_image_of_another_is_refused(registry, source, tmp_path):
    from compiler.platform import AMD64, ARM64

    store = OciStore(tmp_path / "store")
    arm = resolve_base(f"docker://{registry.host}/base/multi:1", store, None, lambda _m: None, ARM64)
    assert arm.config["architecture"] == "arm64" and arm.labels == {"arch": "arm64"}
    amd = resolve_base(f"docker://{registry.host}/base/multi:1", store, None, lambda _m: None, AMD64)
    assert amd.labels == {"arch": "amd64"} and amd.manifest_digest != arm.manifest_digest  # one store name each
    with pytest.raises(ResolveError, match=r"base/oci:1 has no linux/arm64 image; name a base whose index has one"):
        resolve_base(f"docker://{registry.host}/base/oci:1", store, None, lambda _m: None, ARM64)
