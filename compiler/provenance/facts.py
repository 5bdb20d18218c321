"""Gather the provenance's facts after a build: the spec and lock files' digests, the user's flags,
and the model, code, inputs and base image as the image's own SBOM names them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from compiler import __version__
from compiler.provenance.statement import TREE_METHOD, BuildFacts, Dependency

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
# build flags that change what is built; they are the provenance's external parameters
FLAGS = ("model", "base_image", "python_version", "builder", "relock", "no_cache", "template", "lock_file",
         "target_environment", "compression")  # fmt: skip


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sbom_dependencies(sbom: dict, base_digest: str | None, builder: str | None) -> list[Dependency]:
    """The model, code and input trees and the base image, as the SBOM states them (the base by the
    digest the build reports when it reports one)."""
    found = []
    for component in sbom.get("components") or []:
        ref = str(component.get("bom-ref", ""))
        hashes = component.get("hashes") or []
        sha = hashes[0].get("content") if hashes else None
        name = component.get("name", "")
        if ref in ("model", "code") or ref.startswith("input:"):
            label = f"{name}:{component['version']}" if component.get("version") else name
            kind = ref.split(":", 1)[0]
            found.append(Dependency(f"{kind}:{label}" if kind != "input" else ref, sha, {"digestMethod": TREE_METHOD}))
        elif ref == "base-image":
            digest = base_digest.split(":", 1)[1] if base_digest else sha
            # the OCI back end names a base by its manifest digest, the Dockerfile back end by the engine's image id
            what = "manifest" if builder == "oci" else "image config (the engine's image id)"
            found.append(Dependency(f"base-image:{name}", digest, {"digestOf": what} if digest else {}))
    return found


def build_facts(result: dict, spec: Path, flags: dict, sbom: bytes, started: float, finished: float) -> BuildFacts:
    """The facts of one ``pkgc build`` (``result``: its JSON result; ``sbom``: the image's SBOM bytes)."""
    document = json.loads(sbom)
    lock = Path(result["lock_file"])
    dependencies = [
        Dependency(f"spec:{spec.name}", file_sha256(spec), media_type="application/yaml"),
        Dependency(f"lock:{lock.name}", file_sha256(lock), media_type="application/yaml"),
        *_sbom_dependencies(document, result.get("base_digest"), result.get("builder")),
    ]
    external = {
        "spec": {"name": spec.name, "digest": {"sha256": dependencies[0].sha256}},
        "targetEnvironment": result.get("target_environment"),
        "flags": {k: v for k, v in flags.items() if k in FLAGS and v not in (None, False)},
    }
    internal = {k: result.get(k) for k in ("builder", "environment_strategy", "python", "lock_status", "mode") if result.get(k)}
    sbom_digest = hashlib.sha256(sbom).hexdigest()
    byproducts = (Dependency("sbom.cdx.json", sbom_digest, {"path": "/opt/pkgc/sbom.cdx.json"}, SBOM_MEDIA_TYPE),)
    image = result["image"].rpartition(":")[0] or result["image"]
    return BuildFacts(__version__, image, external, internal, tuple(dependencies), byproducts, rfc3339(started), rfc3339(finished))
