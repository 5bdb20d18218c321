"""The shared build cache in a registry (``--cache REGISTRY/REPO``): layer key -> layer.

Every layer pkgc makes has a key, the digest of its inputs (``compiler.backends.oci.environment_layers``,
``model_layers``, ``layers``). In the cache repository each key is one small OCI artifact, tagged
``pkgc-<key>``: an image manifest with ``artifactType`` ``application/vnd.pkgc.layer-cache.v1+json``,
its config (of that media type) the record ``{"key", "layers": [{digest, size, diff_id, media_type}],
"facts": {...}}`` (an environment group's ELF facts, a whole environment's groups and needs), its
``layers`` the cached layers' descriptors (the blobs are ordinary blobs of that repository, kept by
the registry as long as the artifact is).

A runner that finds a key uses the layer by its descriptor, without its bytes (``RemoteBlobs``).
``readwrite`` (the default) uploads what it built and is not yet there; ``read`` never writes (a
pull-request build reads a cache it cannot poison). The cache changes only whether a layer is
rebuilt, never its bytes: the key covers everything that makes them."""

from __future__ import annotations

import json
import re
from hashlib import sha256
from dataclasses import dataclass
from typing import Callable, Literal

from compiler.cache.cache_repo import CacheRepo, parse_cache
from compiler.cache.upload_lease import upload_once
from compiler.errors import excerpt
from compiler.oci.compress import MEDIA_TYPES
from compiler.oci.credentials import RegistryLogin
from compiler.oci.distribution import DIGEST_RE, RegistryClient, RegistryError
from compiler.oci.layer import LayerBlob
from compiler.oci.remote_blobs import Location, RemoteBlobs, logged_transfers, materialize
from compiler.oci.store import MANIFEST, OciStore, canonical_json

CACHE_TYPE = "application/vnd.pkgc.layer-cache.v1+json"
KEY_RE = re.compile(r"^[0-9a-f]{64}$")
TAG_PREFIX = "pkgc-"
MAX_LAYER_SIZE = 1 << 40
Mode = Literal["read", "readwrite"]


@dataclass(frozen=True)
class CacheEntry:
    """What a key names: its layers (in order) and the facts a build needs besides their bytes."""

    key: str
    layers: tuple[LayerBlob, ...]
    facts: dict


def tag_for(key: str) -> str:
    if not KEY_RE.match(key):
        raise ValueError(f"not a layer key: {key!r}")
    return TAG_PREFIX + key


def artifact(entry: CacheEntry) -> tuple[bytes, bytes]:
    """The entry as (config blob, manifest) bytes; pure."""
    tag_for(entry.key)
    config = canonical_json({"key": entry.key, "layers": [_layer_json(l) for l in entry.layers], "facts": entry.facts})
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": CACHE_TYPE,
        "config": {"mediaType": CACHE_TYPE, "digest": "sha256:" + sha256(config).hexdigest(), "size": len(config)},
        "layers": [l.descriptor() for l in entry.layers],
        "annotations": {"io.pkgc.cache.key": entry.key},
    }  # fmt: skip
    return config, canonical_json(manifest)


def _layer_json(layer: LayerBlob) -> dict:
    return {"digest": layer.digest, "size": layer.size, "diff_id": layer.diff_id, "media_type": layer.media_type}


def config_descriptor(key: str, manifest_bytes: bytes) -> tuple[str, int]:
    """The config's digest and size from an entry's manifest (ValueError when it is not one of ours)."""
    manifest = _json(manifest_bytes, "manifest")
    if manifest.get("artifactType") != CACHE_TYPE or (manifest.get("annotations") or {}).get("io.pkgc.cache.key") != key:
        raise ValueError(f"the manifest tagged {tag_for(key)} is not pkgc's cache entry for that key")
    config = manifest.get("config")
    if not isinstance(config, dict) or config.get("mediaType") != CACHE_TYPE:
        raise ValueError("its config is not a pkgc cache record")
    digest, size = config.get("digest"), config.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest) or not isinstance(size, int) or not 0 < size <= 4 << 20:
        raise ValueError("its config descriptor has no usable digest or size")
    return digest, size


def read_entry(key: str, manifest_bytes: bytes, config_bytes: bytes) -> CacheEntry:
    """The entry an artifact describes, every field checked (ValueError naming the first bad one)."""
    record = _json(config_bytes, "record")
    if record.get("key") != key:
        raise ValueError(f"the record is for the key '{excerpt(str(record.get('key')), 20)}'")
    layers = record.get("layers")
    if not isinstance(layers, list) or not 0 < len(layers) <= 64:
        raise ValueError("the record names no layers")
    parsed = tuple(_layer(item) for item in layers)
    described = _json(manifest_bytes, "manifest").get("layers")
    if described != [l.descriptor() for l in parsed]:
        raise ValueError("the manifest's layers are not the record's")
    facts = record.get("facts", {})
    if not isinstance(facts, dict):
        raise ValueError("its facts are not an object")
    return CacheEntry(key, parsed, facts)


def _layer(item: object) -> LayerBlob:
    if not isinstance(item, dict):
        raise ValueError("a layer is not an object")
    digest, size, diff_id, media = item.get("digest"), item.get("size"), item.get("diff_id"), item.get("media_type")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest) or not isinstance(diff_id, str) or not DIGEST_RE.match(diff_id):
        raise ValueError("a layer's digest or diff_id is not a sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_LAYER_SIZE:
        raise ValueError("a layer's size is not a positive number of bytes")
    if media not in MEDIA_TYPES.values():
        raise ValueError(f"a layer's media type '{excerpt(str(media), 60)}' is not one pkgc writes")
    if media == MEDIA_TYPES["none"] and diff_id != digest:
        raise ValueError("a plain tar layer's diff_id is not its digest")
    return LayerBlob(digest, size, diff_id, media)


def _json(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return value


class RegistryCache:
    """The cache repository as a build sees it: ``find`` a key, ``offer`` what was built."""

    def __init__(self, repo: CacheRepo, mode: Mode, store: OciStore, credentials: tuple[str, str] | RegistryLogin | None = None,
                 log: Callable[[str], None] = lambda _line: None, reuse: bool = True):  # fmt: skip
        self.repo, self.mode, self.store, self.log = repo, mode, store, log
        self.reuse = reuse  # --no-cache: nothing is taken from the cache (what is built is still offered)
        self.client = RegistryClient(repo.registry, credentials, logged_transfers(store))
        self.remote = RemoteBlobs(store)
        self._known: set[str] = set()  # keys the cache holds (found or offered in this build)
        self.hits = self.misses = 0

    def client_for(self, registry: str) -> RegistryClient:
        return self.client if registry == self.repo.registry else RegistryClient(registry, None, self.client.transfers)

    def materialize(self, digests: list[str]) -> int:
        """Fetch the bytes of those of ``digests`` the store knows only in a registry; the bytes fetched."""
        return materialize(self.store, digests, self.client_for, self.log)

    def bad(self, key: str, reason: str) -> RegistryError:
        return RegistryError(f"cache {self.repo}: entry {TAG_PREFIX}{key[:12]}...: {reason}")

    def _fetch(self, key: str) -> CacheEntry | None:
        found = self.client.get_manifest(self.repo.repository, tag_for(key))
        if found is None:
            return None
        try:
            digest, size = config_descriptor(key, found[0])
            config = self.client.get_small_blob(self.repo.repository, digest, size)
            return read_entry(key, found[0], config)
        except ValueError as exc:
            raise self.bad(key, str(exc)) from None

    def find(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, its layers recorded in the store as living in the cache (their
        bytes are not fetched); None when the cache does not have it (or the build reuses nothing)."""
        entry = self._fetch(key) if self.reuse else None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._known.add(key)
        self.log(f"cache {self.repo}: {key[:12]} found ({sum(l.size for l in entry.layers) / 1e6:.1f} MB, not downloaded)")
        for layer in entry.layers:
            self.remote.record(layer.digest, layer.size, Location(self.repo.registry, self.repo.repository), cache=True)
        return entry

    def share(self, layers: list[LayerBlob]) -> None:
        """Blobs the store holds (the base's layers) shared through the cache repository: recorded as
        living there when it has them (a push mounts them); when it lacks them (readwrite), the push
        puts them there on its way (``native_push``), at the end of the build rather than now, when
        every runner of a fleet starts at once and would upload them together."""
        here = Location(self.repo.registry, self.repo.repository)
        for layer in layers:
            if self.client.has_blob(self.repo.repository, layer.digest):
                self.remote.record(layer.digest, layer.size, here, cache=True)
            elif self.mode == "readwrite" and self.store.blobs.has(layer.digest):
                self.remote.want_shared(layer.digest, layer.size, here)

    def offer(self, key: str, layers: list[LayerBlob], facts: dict | None = None) -> None:
        """Make ``key`` name ``layers`` in the cache (readwrite; read: nothing): the blobs the
        repository lacks are uploaded from the store, then the record and its manifest."""
        if self.mode != "readwrite" or key in self._known:
            return
        entry = CacheEntry(key, tuple(layers), facts or {})
        if self._fetch(key) is None:
            for layer in layers:
                if not self.store.blobs.has(layer.digest):  # only known remotely: offered only if the cache has it
                    if not self.client.has_blob(self.repo.repository, layer.digest):
                        return
                    continue
                path = self.store.blobs.path(layer.digest)
                upload_once(self.client, self.repo.repository, layer.digest, layer.size, lambda p=path: open(p, "rb"), self.log)
            config, manifest = artifact(entry)
            self.client.put_blob_bytes(self.repo.repository, config)
            self.client.put_manifest(self.repo.repository, tag_for(key), manifest, MANIFEST)
            self.log(f"cache {self.repo}: {key[:12]} stored ({sum(l.size for l in layers) / 1e6:.1f} MB)")
        self._known.add(key)
        for layer in layers:
            self.remote.record(layer.digest, layer.size, Location(self.repo.registry, self.repo.repository), cache=True)


def reused_or_written(cache: RegistryCache | None, key: str, write: Callable[[], LayerBlob], reuse: bool = True) -> LayerBlob:
    """One layer through the cache: the cached one when ``key`` is found, else ``write()`` offered."""
    if cache is not None and reuse:
        entry = cache.find(key)
        if entry is not None and len(entry.layers) == 1:
            return entry.layers[0]
    blob = write()
    if cache is not None:
        cache.offer(key, [blob])
    return blob


def open_cache(options, log: Callable[[str], None], reuse: bool = True) -> RegistryCache | None:
    """The build's shared cache from its options (``--cache``/``cache``), or None."""
    if options.cache is None:
        return None
    store, repo = OciStore.in_cache(options.cache_dir), parse_cache(options.cache)
    return RegistryCache(repo, options.cache_mode, store, RegistryLogin(repo.registry), log, reuse)


def share_base(cache: RegistryCache, base: str | None) -> None:
    """Share the layers of the ``base`` manifest (when in the store) through the cache, so a push mounts them too."""
    if base is not None and base.startswith("sha256:") and cache.store.blobs.has(base):
        cache.share([LayerBlob(l["digest"], l["size"], "", l.get("mediaType", "")) for l in cache.store.read_json(base).get("layers", [])])
