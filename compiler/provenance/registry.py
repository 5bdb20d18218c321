"""Fetch an image's attestations from a registry into a small OCI layout, to check them offline.

skopeo reads the registry (its own credentials; plain HTTP for loopback registries, as pkgc's push):
the image manifest (``inspect --raw``: its digest is the subject), the image config (for the SBOM
label), and the referrers through the tag-schema fallback (``copy --all`` of ``sha256-<hex>``). The
layout then holds the manifest, the config and the referrers (no layers), tagged ``image``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from compiler.oci.reference import PushTarget, parse_push
from compiler.oci.skopeo import LogSink, skopeo_binary, skopeo_copy
from compiler.errors import BuildError, SpecError, SpecProblem, VerifyError
from compiler.errors import TargetSyntaxError
from compiler.oci.referrers import fallback_tag
from compiler.labels import DIGEST_RE
from compiler.oci.store import INDEX, LAYOUT, MANIFEST, canonical_json

IMAGE_TAG = "image"


def parse_remote(text: str) -> PushTarget:
    try:
        target = parse_push(text)
    except TargetSyntaxError as exc:
        raise SpecError(SpecProblem(text, "", str(exc).split(": ", 1)[-1])) from None
    return target


def _inspect(reference: str, tls: list[str], *options: str) -> bytes:
    proc = subprocess.run([skopeo_binary(), "inspect", *tls, *options, "--raw", f"docker://{reference}"],
                          capture_output=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
        raise BuildError(f"reading {reference} failed: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


def fetch_attestations(text: str, folder: Path, log: LogSink) -> str:
    """Write the attestations of the image ``text`` (REGISTRY/REPO[:TAG]) under ``folder``; return
    the ``oci:`` reference of the image in it."""
    target = parse_remote(text)
    reference = target.reference(target.tag or "latest")
    tls = [] if not target.loopback else ["--tls-verify=false"]
    manifest = _inspect(reference, tls)
    document = json.loads(manifest)
    if document.get("mediaType", MANIFEST) != MANIFEST or "config" not in document:
        raise VerifyError(f"{reference}: not a single OCI image manifest (pkgc pushes one)")
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    config = _inspect(reference, tls, "--config")
    if "sha256:" + hashlib.sha256(config).hexdigest() != document["config"].get("digest"):
        raise VerifyError(f"{reference}: the registry's config does not match the manifest")
    layout = folder / "layout"
    tag = fallback_tag(digest)
    try:
        index = json.loads(_inspect(f"{target.registry}/{target.repository}:{tag}", tls))
    except BuildError:
        raise VerifyError(f"{reference}: no attestations are attached to {digest} (no tag {tag})") from None
    options = ["--preserve-digests"] + ([] if not target.loopback else ["--src-tls-verify=false"])
    entries = [{"mediaType": MANIFEST, "digest": digest, "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": IMAGE_TAG}}]  # fmt: skip
    for number, m in enumerate(index.get("manifests") or []):
        if not isinstance(m, dict) or m.get("mediaType") != MANIFEST or not DIGEST_RE.match(str(m.get("digest"))):
            continue
        # one artifact at a time: skopeo 1.9 will not copy an index naming artifact types unchanged
        source = f"docker://{target.registry}/{target.repository}@{m['digest']}"
        skopeo_copy(source, f"oci:{layout}:referrer-{number}", log, options)
        artifact = json.loads((layout / "blobs" / "sha256" / m["digest"].split(":", 1)[1]).read_bytes())
        entries.append({**m, "artifactType": m.get("artifactType") or artifact.get("artifactType", "")})
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in (manifest, config):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    fetched = {"schemaVersion": 2, "mediaType": INDEX}
    (layout / "index.json").write_bytes(canonical_json({**fetched, "manifests": entries}))
    (layout / "oci-layout").write_bytes(canonical_json(LAYOUT))
    return f"oci:{layout}:{IMAGE_TAG}"
