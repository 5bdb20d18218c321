"""``pkgc cache prune``: remove what no one needs, then, with a size limit, what was used longest ago.

In order: the staging of runs that are gone; and, only while no run holds the cache
(``compiler.cache.use``): store blobs that neither the store's index nor a record names (with the
records and base scans whose blobs are gone), logs older than ``LOG_MAX_AGE``, and then, until the
cache is within ``max_size``, pyc files and fetched files by last use (oldest first), then package
images a newer build of their repository replaced (``compiler.cache.superseded``), oldest first. The
newest image of each repository, records, built wheels and recent logs are never evicted: what stays
over the limit is reported."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from compiler.cache.lru import last_use
from compiler.cache.owner import remove_tree
from compiler.cache.parts import PARTS, STAGING, Usage, measure, tree_usage
from compiler.cache.references import MAX_RECORD, RECORD_FOLDERS, UnreadableStore, hex_digest, read_json, referenced_blobs
from compiler.errors import PkgcError
from compiler.cache.superseded import superseded_images, unname
from compiler.cache.use import exclusive, sweep

LOG_MAX_AGE = 7 * 24 * 3600.0
_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class PruneResult:
    cache: Path
    before: int
    after: int
    max_size: int | None
    removed: dict[str, Usage] = field(default_factory=lambda: {name: Usage() for name in PARTS})
    busy: bool = False  # other runs held the cache: only the staging of gone runs was removed
    store_left: str | None = None  # why store blobs were left as they are

    @property
    def freed(self) -> int:
        return sum(u.bytes for u in self.removed.values())

    @property
    def over(self) -> int:
        """Bytes still above ``max_size`` (0 when within it, or without a limit)."""
        return max(0, self.after - self.max_size) if self.max_size is not None else 0

    def as_dict(self) -> dict:
        return {"cache": str(self.cache), "before": self.before, "after": self.after, "freed": self.freed,
                "max_size": self.max_size, "over": self.over, "busy": self.busy, "store_left": self.store_left,
                "removed": {name.replace(" ", "_"): u.as_dict() for name, u in self.removed.items() if u.files}}  # fmt: skip


def prune_cache(cache: Path, max_size: int | None = None, now: float | None = None) -> PruneResult:
    """Prune ``cache`` (see the module's docstring); never waits for a run."""
    now = time.time() if now is None else now
    if not cache.is_dir():
        return PruneResult(cache, 0, 0, max_size)
    result = PruneResult(cache, measure(cache).total, 0, max_size)
    with exclusive(cache) as alone:
        swept = sweep(cache, alone, now)
        result.removed["staging"] = Usage(swept.bytes, swept.entries)
        result.busy = not alone
        if alone:
            result.store_left = _prune_store(cache / "oci", result.removed)
            _prune_logs(cache / "logs", now, result.removed["logs"])
            if max_size is not None:
                _evict(cache, max_size, result.removed)
    result.after = measure(cache).total
    return result


def _remove(path: Path, usage: Usage) -> None:
    size = tree_usage(path)
    try:
        remove_tree(path)
    except OSError:
        return
    if not os.path.lexists(path):
        usage.bytes += size.bytes
        usage.files += size.files


def _prune_store(store: Path, removed: dict[str, Usage]) -> str | None:
    """Remove unnamed blobs, then records and scans whose blobs are gone; the reason when blobs stay."""
    folder = store / "blobs" / "sha256"
    if not folder.is_dir():
        return None
    try:
        kept = referenced_blobs(store)
    except UnreadableStore as exc:
        return str(exc)
    for entry in os.scandir(folder):
        if _HEX.match(entry.name) and entry.name not in kept:
            _remove(Path(entry.path), removed["store blobs"])
    for record_folder, key in RECORD_FOLDERS.items():
        for path in _json_files(store / record_folder):
            if not _names_held_blob(path, key, folder):
                _remove(path, removed["store records"])
    for path in _json_files(store / "scans"):  # a base image's scan, by its manifest's hex digest
        if not (folder / path.stem).exists():
            _remove(path, removed["store records"])
    for path in _json_files(store / "model-layers"):  # remembered model layers: they keep no blob alive
        if not _names_held_blob(path, "digest", folder):
            _remove(path, removed["store records"])
    for path in _json_files(store / "remote"):  # where a blob lives in a registry: kept while something names it
        if path.stem not in kept:
            _remove(path, removed["store records"])
    return None


def _json_files(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.name.endswith(".json") and not e.name.startswith(".")]
    except OSError:
        return []


def _names_held_blob(record: Path, key: str, blobs: Path) -> bool:
    try:
        data = read_json(record, MAX_RECORD)
    except (OSError, ValueError):
        return False
    hexdigest = hex_digest(data.get(key)) if isinstance(data, dict) else None
    return hexdigest is not None and (blobs / hexdigest).exists()


def _prune_logs(folder: Path, now: float, usage: Usage) -> None:
    try:
        logs = [Path(e.path) for e in os.scandir(folder) if e.name.endswith(".log") and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for path in logs:
        try:
            old = now - path.lstat().st_mtime > LOG_MAX_AGE
        except OSError:
            continue
        if old:
            _remove(path, usage)


@dataclass(frozen=True)
class _Candidate:
    path: Path
    part: str
    last_use: float
    bytes: int


def evictable(cache: Path) -> list[_Candidate]:
    """pyc files, fetched files (each ``files/<sha256>/`` folder) and unpacked bases (each
    ``bases/<key>/``), least recently used first."""
    staging_prefixes = tuple(prefix for folder, prefix in STAGING if folder in ("pyc/*", "files/*"))
    found: list[_Candidate] = []
    for bucket in _subfolders(cache / "pyc"):
        for entry in os.scandir(bucket):
            if entry.is_file(follow_symlinks=False) and not entry.name.startswith(staging_prefixes):
                info = entry.stat(follow_symlinks=False)
                found.append(_Candidate(Path(entry.path), "pyc cache", last_use(info), info.st_size))
    for folder in _subfolders(cache / "files"):
        files = [Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False) and not e.name.startswith(".")]
        if files:
            used = max(last_use(f.lstat()) for f in files)
            found.append(_Candidate(folder, "fetched files", used, tree_usage(folder).bytes))
    for folder in _subfolders(cache / "bases"):
        ready = folder / "ready"
        if not folder.name.startswith(".") and ready.is_file():
            found.append(_Candidate(folder, "unpacked bases", last_use(ready.lstat()), tree_usage(folder).bytes))
    return sorted(found, key=lambda c: (c.last_use, str(c.path)))


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _evict(cache: Path, max_size: int, removed: dict[str, Usage]) -> None:
    total = measure(cache).total
    for candidate in evictable(cache):
        if total <= max_size:
            return
        before = removed[candidate.part].bytes
        _remove(candidate.path, removed[candidate.part])
        total -= removed[candidate.part].bytes - before
    store = cache / "oci"
    try:
        old = superseded_images(store) if total > max_size else []
    except PkgcError:  # a damaged index: said by _prune_store's reason, nothing evicted blindly
        return
    for image in old:
        unname(store, image)
        before = sum(u.bytes for u in removed.values())
        if _prune_store(store, removed) is not None:
            return
        total -= sum(u.bytes for u in removed.values()) - before
        if total <= max_size:
            return
