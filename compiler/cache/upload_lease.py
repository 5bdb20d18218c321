"""One upload of a large blob into the shared cache when several runners finish the same layer at once.

Registries have no "create if absent", so a runner about to upload a blob the cache lacks first takes
a lease: a small artifact tagged ``pkgc-upload-<hex>`` naming a random id and the time. A fresh lease
of another runner means that runner is uploading it: wait (HEAD every ``POLL`` s) until the blob is
there or the lease expires (``TTL``). Two runners that put their lease at the same moment both read it
back after ``SETTLE`` s: the tag holds one of the two (the last written), and only its owner uploads.
Small blobs are uploaded without a lease (the lease costs more than they do)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import BinaryIO, Callable

from compiler.oci.distribution import RegistryClient
from compiler.oci.store import MANIFEST, canonical_json

LEASE_TYPE = "application/vnd.pkgc.upload-lease.v1+json"
MIN_SIZE = 1 << 20
TTL = 180.0
POLL = 0.5
SETTLE = 0.3


def _tag(digest: str) -> str:
    return "pkgc-upload-" + digest.split(":", 1)[1]


def _read_lease(client: RegistryClient, repository: str, digest: str) -> dict | None:
    found = client.get_manifest(repository, _tag(digest))
    if found is None:
        return None
    try:
        lease = json.loads(found[0]).get("annotations") or {}
        return {"id": str(lease["io.pkgc.lease.id"]), "time": float(lease["io.pkgc.lease.time"])}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # not a lease of ours: as if there were none


def _put_lease(client: RegistryClient, repository: str, digest: str, lease_id: str) -> None:
    config = canonical_json({"blob": digest})
    client.put_blob_bytes(repository, config)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": LEASE_TYPE,
                "config": {"mediaType": LEASE_TYPE, "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
                "layers": [], "annotations": {"io.pkgc.lease.id": lease_id, "io.pkgc.lease.time": f"{time.time():.3f}"}}  # fmt: skip
    client.put_manifest(repository, _tag(digest), canonical_json(manifest), MANIFEST)


def upload_once(client: RegistryClient, repository: str, digest: str, size: int, open_blob: Callable[[], BinaryIO],
                log: Callable[[str], None] = lambda _line: None) -> bool:  # fmt: skip
    """Make ``repository`` hold ``digest``: uploaded by this runner (True) or, while another held the
    lease, by that one (False)."""
    if client.has_blob(repository, digest):
        return False
    if size < MIN_SIZE:
        client.upload_blob(repository, digest, size, open_blob)
        return True
    mine = uuid.uuid4().hex
    while True:
        lease = _read_lease(client, repository, digest)
        if lease is not None and lease["id"] != mine and time.time() - lease["time"] < TTL:
            log(f"another runner is uploading {digest[:19]}: waiting for it")
            while time.time() - lease["time"] < TTL:
                if client.has_blob(repository, digest):
                    return False
                time.sleep(POLL)
        _put_lease(client, repository, digest, mine)
        time.sleep(SETTLE)
        lease = _read_lease(client, repository, digest)
        if lease is None or lease["id"] == mine:
            if client.has_blob(repository, digest):
                return False
            client.upload_blob(repository, digest, size, open_blob)
            return True
