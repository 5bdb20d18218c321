"""Blobs pkgc's store knows to live in a registry repository, held there or not.

A layer found in the shared build cache (``compiler.cache.registry_cache``) is used by its descriptor
without its bytes: ``<store>/remote/<hex>.json`` says where it lives (registry, repository) and its
size. Its bytes are fetched (``materialize``) only when something reads them: the engine load, an
``--output``, a push to another registry. A push to the same registry mounts it from there
(``compiler.oci.native_push``). Blobs pkgc uploaded to the cache are recorded too, for the mount."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from compiler.oci.distribution import RegistryClient, Transfers
from compiler.oci.store import OciStore

RECORD_LIMIT = 64 << 10
MAX_LOCATIONS = 16  # the newest kept


@dataclass(frozen=True)
class Location:
    registry: str
    repository: str


ClientFor = Callable[[str], RegistryClient]


class RemoteBlobs:
    """The store's records of where blobs live (``<store>/remote``)."""

    def __init__(self, store: OciStore):
        self.store = store
        self.folder = store.root / "remote"

    def _path(self, digest: str) -> Path:
        return self.folder / f"{self.store.blobs.path(digest).name}.json"

    def record(self, digest: str, size: int, location: Location, cache: bool = False) -> None:
        """Remember that ``digest`` (``size`` bytes) is in ``location`` (the newest first); ``cache``:
        a shared build cache's repository (then a push to that registry is pkgc's own, and mounts)."""
        data = self._read(digest)
        known = [l for l in self.where(digest) if l != location]
        locations = [[location.registry, location.repository]] + [[l.registry, l.repository] for l in known]
        caches = [c for c in data.get("caches", []) if isinstance(c, str)]
        if cache and location.registry not in caches:
            caches.append(location.registry)
        self._write(digest, {"size": size, "locations": locations[:MAX_LOCATIONS], "caches": caches[:MAX_LOCATIONS]})

    def in_cache_on(self, digest: str, registry: str) -> bool:
        """Whether a shared build cache on ``registry`` holds ``digest`` (or is to, ``want_shared``)."""
        data = self._read(digest)
        share = data.get("share")
        return registry in (data.get("caches") or []) or (isinstance(share, list) and share[:1] == [registry])

    def want_shared(self, digest: str, size: int, location: Location) -> None:
        """Remember that a push should put ``digest`` into ``location`` (the cache) on its way: the
        base's layers the cache lacked when the build started, uploaded then by the first to push."""
        data = self._read(digest)
        data.update(size=size, share=[location.registry, location.repository])
        self._write(digest, data)

    def share_to(self, digest: str) -> Location | None:
        item = self._read(digest).get("share")
        return Location(str(item[0]), str(item[1])) if isinstance(item, list) and len(item) == 2 else None

    def _write(self, digest: str, data: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".remote-", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, self._path(digest))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, digest: str) -> dict:
        try:
            with open(self._path(digest), "rb") as fh:
                data = json.loads(fh.read(RECORD_LIMIT + 1)[:RECORD_LIMIT])
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def where(self, digest: str) -> list[Location]:
        items = self._read(digest).get("locations")
        if not isinstance(items, list):
            return []
        return [Location(str(i[0]), str(i[1])) for i in items if isinstance(i, list) and len(i) == 2]

    def size(self, digest: str) -> int | None:
        size = self._read(digest).get("size")
        return size if isinstance(size, int) and size >= 0 else None


def record_pulled(store: OciStore, registry: str, repository: str, layers: list[dict]) -> None:
    """The layers of an image pulled from ``registry/repository`` (a base image): a push of an image on
    them to the same registry mounts them from there instead of uploading them."""
    remote = RemoteBlobs(store)
    for layer in layers:
        digest, size = layer.get("digest"), layer.get("size")
        if isinstance(digest, str) and isinstance(size, int) and store.blobs.has(digest):
            remote.record(digest, size, Location(registry, repository))


def missing(store: OciStore, digests: Iterable[str]) -> list[str]:
    """The ``digests`` whose bytes are not in the store."""
    return [d for d in dict.fromkeys(digests) if not store.blobs.has(d)]


def materialize(store: OciStore, digests: Iterable[str], client_for: ClientFor, log: Callable[[str], None]) -> int:
    """Fetch every one of ``digests`` the store holds only as a remote record; the bytes fetched.
    A blob neither held nor recorded is a BuildError naming it."""
    from compiler.errors import BuildError

    remote, fetched = RemoteBlobs(store), 0
    for digest in missing(store, digests):
        places, size = remote.where(digest), remote.size(digest)
        if not places or size is None:
            raise BuildError(f"blob {digest[:19]} is neither in pkgc's store nor known in a registry; build again with --no-cache")
        place = places[0]
        client = client_for(place.registry)
        client.fetch_blob(place.repository, digest, size, store.blobs)
        fetched += size
        log(f"fetched {digest[:19]} ({size / 1e6:.1f} MB) from {place.registry}/{place.repository}")
    return fetched


def transfers_log(store: OciStore) -> Path:
    """Where each client appends what it moved (one JSON object a line): the fleet bench and the
    tests read it; ``pkgc cache prune`` may remove it."""
    return store.root / "transfers.jsonl"


def logged_transfers(store: OciStore) -> Transfers:
    return Transfers(log=transfers_log(store))
