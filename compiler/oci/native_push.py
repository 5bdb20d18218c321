"""``--push`` of an OCI-built image by pkgc's own distribution client, when a shared build cache on
the pushed-to registry holds some of its blobs: each blob the target repository lacks (HEAD first) is
mounted from a repository of that registry that holds it
(``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>``), or uploaded from the store (fetched
first when only a registry elsewhere holds it); then the very manifest built is PUT under the tag.
Any other image is pushed by skopeo, as without --cache (``compiler.oci.publish``)."""

from __future__ import annotations

import time
from typing import Callable

from compiler.cache.upload_lease import upload_once
from compiler.oci.reference import PushResult, PushTarget
from compiler.oci.credentials import RegistryLogin
from compiler.oci.distribution import RegistryClient
from compiler.oci.outputs import StoredImage
from compiler.oci.remote_blobs import Location, RemoteBlobs, logged_transfers, materialize, missing
from compiler.oci.store import MANIFEST, OciStore

Log = Callable[[str], None]


def wanted(store: OciStore, image: StoredImage, target: PushTarget) -> bool:
    """Whether pkgc pushes ``image`` itself: a shared build cache on the target's registry holds one of
    its blobs, to mount. Else skopeo pushes, with its own credentials and blob cache, as without --cache
    (blobs only in a cache on another registry are fetched first)."""
    remote = RemoteBlobs(store)
    return any(remote.in_cache_on(d, target.registry) for d in image.blobs[1:])


def client_for(store: OciStore) -> Callable[[str], RegistryClient]:
    return lambda registry: RegistryClient(registry, RegistryLogin(registry), logged_transfers(store))


def _shared(client: RegistryClient, store: OciStore, remote: RemoteBlobs, digest: str, cache: Location) -> str:
    """Put ``digest`` into the cache repository unless another runner did meanwhile; that repository."""
    path = store.blobs.path(digest)
    size = path.stat().st_size
    upload_once(client, cache.repository, digest, size, lambda: open(path, "rb"))
    remote.record(digest, size, cache, cache=True)
    return cache.repository


def fetch_missing(store: OciStore, digests: list[str], log: Log) -> int:
    """The bytes of ``digests`` the store knows only in a registry, fetched (for an ``--output``)."""
    return materialize(store, digests, client_for(store), log) if missing(store, digests) else 0


def push_stored(store: OciStore, image: StoredImage, target: PushTarget, tag: str, log: Log) -> PushResult:
    started = time.monotonic()
    client = client_for(store)(target.registry)
    remote, repository = RemoteBlobs(store), target.repository
    mounted = skipped = uploaded = 0
    for digest in [*dict.fromkeys(image.layer_digests), image.config_digest]:
        if client.has_blob(repository, digest):
            skipped += 1
            continue
        sources = [l.repository for l in remote.where(digest) if l.registry == target.registry and l.repository != repository]
        shared = remote.share_to(digest)
        if not sources and shared is not None and shared.registry == target.registry and store.blobs.has(digest):
            sources = [_shared(client, store, remote, digest, shared)]  # the cache gets it once, the target mounts it
        location = client.mount_blob(repository, digest, sources[0]) if sources else None
        if sources and location is None:
            mounted += 1
        else:
            if not store.blobs.has(digest):
                materialize(store, [digest], client_for(store), log)
            size = store.blobs.path(digest).stat().st_size
            path = store.blobs.path(digest)
            client.upload_blob(repository, digest, size, lambda p=path: open(p, "rb"), location)
            uploaded += size
        remote.record(digest, remote.size(digest) or store.blobs.path(digest).stat().st_size, Location(target.registry, repository))
    reference = target.reference(tag)
    digest = client.put_manifest(repository, tag, store.blobs.read(image.manifest_digest), MANIFEST)
    log(f"pushed {reference}: {mounted} blobs mounted, {skipped} already there, {uploaded / 1e6:.1f} MB uploaded")
    return PushResult(reference, digest, client.secure, time.monotonic() - started)
