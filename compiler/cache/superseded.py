"""Package images in pkgc's store that a newer build of the same repository replaced.

Every build names its image in the store (``<repo>:<version>`` and a content tag), and each build
of a changed package is a new version: without this, a store keeps every gigabyte-sized model layer
ever built. ``pkgc cache prune --max-size`` lets go of these, least recently named first, after the
pyc and fetched files; the newest image of each repository always stays (it is what ``pkgc run``,
``--output`` and a rebuild's reuse look for)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.cache.lru import last_use
from compiler.oci.store import NAMED_AT, REF_NAME, OciStore


@dataclass(frozen=True)
class Superseded:
    """One image (a manifest) and every store name pointing at it."""

    digest: str
    names: frozenset[str]
    named_at: float


def _named_at(store: OciStore, entry: dict) -> float:
    try:
        return float((entry.get("annotations") or {})[NAMED_AT])
    except (KeyError, TypeError, ValueError):  # named by an older pkgc: when its manifest was written
        try:
            return last_use(store.blobs.path(entry["digest"]).stat())
        except (OSError, ValueError):
            return 0.0


def superseded_images(store_root: Path) -> list[Superseded]:
    """Images of each repository but its most recently named one, oldest first."""
    store = OciStore(store_root)
    by_repo: dict[str, dict[str, Superseded]] = {}
    for entry in store.entries():
        name = (entry.get("annotations") or {}).get(REF_NAME)
        if not isinstance(name, str) or ":" not in name:
            continue
        repo, when = name.rpartition(":")[0], _named_at(store, entry)
        images = by_repo.setdefault(repo, {})
        seen = images.get(entry["digest"])
        images[entry["digest"]] = Superseded(entry["digest"], (seen.names if seen else frozenset()) | {name},
                                             max(when, seen.named_at if seen else 0.0))  # fmt: skip
    old = []
    for images in by_repo.values():
        newest = max(images.values(), key=lambda image: (image.named_at, image.digest))
        old += [image for image in images.values() if image is not newest]
    return sorted(old, key=lambda image: (image.named_at, image.digest))


def unname(store_root: Path, image: Superseded) -> None:
    OciStore(store_root).unname(set(image.names))
