"""pkgc's local OCI store: one OCI image layout under the cache folder (``<cache>/oci``).

Base images (imported from the engine, an ``oci:``/``oci-archive:`` reference, or written by
``pkgc base-image build``) and built images live here by digest, named in ``index.json`` by
``org.opencontainers.image.ref.name``; every output and the engine load read their blobs from here.
Index updates hold a file lock and are written atomically, so concurrent builds may share a store."""

from __future__ import annotations

import fcntl
from datetime import datetime, timezone
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from compiler.errors import BuildError, excerpt
from compiler.oci.blobs import Blob, BlobStore
from compiler.oci.regular import NotRegularFile, open_regular

REF_NAME = "org.opencontainers.image.ref.name"
ENGINE_ID = "io.pkgc.engine.image-id"
NAMED_AT = "io.pkgc.named-at"  # when the store last pointed the name here (unix seconds): the newest stays on prune
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYOUT = {"imageLayoutVersion": "1.0.0"}
JSON_LIMIT = 16 << 20  # a manifest or config read from the store
INDEX_LIMIT = 64 << 20  # the store's own index.json (one entry per name)


def timestamp(epoch: int) -> str:
    """The RFC 3339 time of ``epoch`` seconds (UTC) that image configs and histories carry."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(value: object) -> bytes:
    """The one JSON encoding pkgc writes (sorted keys, compact), so equal content has one digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class OciStore:
    def __init__(self, root: Path):
        self.root = root
        self.blobs = BlobStore(root / "blobs" / "sha256")

    @classmethod
    def in_cache(cls, cache_dir: Path) -> "OciStore":
        return cls(cache_dir / "oci")

    def put_json(self, value: object) -> Blob:
        return self.blobs.put(canonical_json(value))

    def read_json(self, digest: str) -> dict:
        """A manifest or config blob (at most JSON_LIMIT bytes), checked against its digest."""
        return json.loads(self.blobs.read(digest, JSON_LIMIT))

    def _index(self) -> dict:
        """The store's index; one that is not a regular file, too large or not an OCI index is a
        BuildError naming it (the store is pkgc's, but a disk or a hand can damage it)."""
        path = self.root / "index.json"
        try:
            fd, size = open_regular(path)
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
        except (OSError, NotRegularFile) as exc:
            raise BuildError(f"cannot read pkgc's OCI store index {path}: {getattr(exc, 'strerror', None) or exc}") from None
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(min(size, INDEX_LIMIT + 1))
        try:
            if len(data) > INDEX_LIMIT:
                raise ValueError(f"more than {INDEX_LIMIT} bytes")
            index = json.loads(data)
            if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
                raise ValueError("no manifests list")
        except (ValueError, RecursionError) as exc:
            raise BuildError(f"{path} is not an OCI index ({excerpt(str(exc), 80)}); remove it to empty pkgc's OCI store") from None
        index["manifests"] = [m for m in index["manifests"] if isinstance(m, dict) and isinstance(m.get("digest"), str)]
        return index

    def entries(self) -> list[dict]:
        return list(self._index().get("manifests", []))

    def find(self, ref: str) -> dict | None:
        """The index entry named ``ref`` (a manifest descriptor), or None."""
        return next((m for m in self.entries() if (m.get("annotations") or {}).get(REF_NAME) == ref), None)

    def find_engine_image(self, image_id: str) -> dict | None:
        """The entry imported from an engine image with this id, if its blobs are all still here."""
        for m in self.entries():
            if (m.get("annotations") or {}).get(ENGINE_ID) == image_id and self.blobs.has(m["digest"]):
                return m
        return None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".index.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def name(self, refs: list[str], manifest: Blob, annotations: dict[str, str] | None = None, media_type: str = MANIFEST) -> None:
        """Point each of ``refs`` at ``manifest`` (an image manifest, or an image index of several
        platforms' images: ``media_type``), replacing what they named before."""
        with self._locked():
            layout = self.root / "oci-layout"
            if not layout.is_file():
                _atomic_write(layout, canonical_json(LAYOUT))
            index = self._index()
            kept = [m for m in index["manifests"] if (m.get("annotations") or {}).get(REF_NAME) not in refs]
            now = str(int(time.time()))
            for ref in refs:
                kept.append({"mediaType": media_type, "digest": manifest.digest, "size": manifest.size,
                             "annotations": {**(annotations or {}), NAMED_AT: now, REF_NAME: ref}})  # fmt: skip
            index["manifests"] = sorted(kept, key=lambda m: m["annotations"][REF_NAME])
            _atomic_write(self.root / "index.json", json.dumps(index, indent=1, sort_keys=True).encode())

    def unname(self, refs: set[str]) -> None:
        """Drop the names ``refs`` (their blobs stay until a prune finds them unnamed)."""
        with self._locked():
            index = self._index()
            index["manifests"] = [m for m in index["manifests"] if (m.get("annotations") or {}).get(REF_NAME) not in refs]
            _atomic_write(self.root / "index.json", json.dumps(index, indent=1, sort_keys=True).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or what it held before, never a part; a failed write leaves no temporary file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
