"""What the cache holds, part by part (``pkgc cache du``), and which of its entries are staging.

Parts: the OCI store's blobs (``oci/blobs/sha256``) and records (its index, the environment-layer,
model-image and base-scan records), the pyc cache (``pyc``), wheels built from source distributions
(``built``), fetched package files (``files``), base images unpacked to run their Python
(``bases``), run logs (``logs``), staging (temporary folders and
half-written files of runs, wherever they lie) and anything else. Sizes are file sizes, each file
counted once however many links it has; links are never followed."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from compiler.cache.owner import owner_alive

PARTS = ("store blobs", "store records", "pyc cache", "built wheels", "fetched files", "unpacked bases", "logs", "staging", "other")
_FOLDERS = (("oci/blobs/sha256", "store blobs"), ("oci", "store records"), ("pyc", "pyc cache"),
            ("built", "built wheels"), ("files", "fetched files"), ("bases", "unpacked bases"), ("logs", "logs"))  # fmt: skip

# Where runs stage: (folder under the cache, '*' for any one name, entry name prefix)
STAGING = (
    ("oci", "pkgc-"),  # the environment's assembly, publish and registry scratch, rattler's cache
    ("oci", ".index.json."),  # the index, written atomically
    ("oci/blobs/sha256", ".partial-"),  # a blob being written
    ("oci/layers", "."), ("oci/model-images", "."), ("oci/model-layers", "."),  # a record being written
    ("locks-read", "."),  # a read lock being remembered
    ("files/*", "."),  # a fetched file being copied in
    ("built", "pkgc-sdist-"),  # a wheel being built
    ("pyc/*", ".partial-"), ("pyc/*", "tmp"),  # a compiled file being kept (tmp: older pkgc)
    ("generated", ".staging-"),  # an MLflow model's scoring folder being written
    ("host-python", "."),  # the running Python's build digest being kept (compiler.backends.oci.host_python)
    ("bases", ".staging-"),  # a base image being unpacked for its Python (compiler.runtime.kept_root)
)  # fmt: skip


@dataclass(frozen=True)
class StagingEntry:
    path: Path
    owner_alive: bool | None  # None: no owner recorded in the name (an older pkgc made it)


def staging_entries(cache: Path, fanned: bool = True) -> list[StagingEntry]:
    """Every staging entry in ``cache``, with whether its owner still runs (``fanned``: also in the
    hundreds of fan-out folders of the pyc cache and the fetched files, ``files/*`` and ``pyc/*``)."""
    found = []
    for folder, prefix in STAGING:
        if folder.endswith("/*") and not fanned:
            continue
        for parent in _folders(cache, folder):
            try:
                names = [e.name for e in os.scandir(parent) if e.name.startswith(prefix)]
            except OSError:
                continue
            found += [StagingEntry(parent / name, owner_alive(name, prefix)) for name in sorted(names)]
    return found


def _folders(cache: Path, pattern: str) -> list[Path]:
    if not pattern.endswith("/*"):
        return [cache / pattern]
    try:
        return [Path(e.path) for e in os.scandir(cache / pattern[:-2]) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


@dataclass
class Usage:
    """Bytes and files of one part."""

    bytes: int = 0
    files: int = 0

    def as_dict(self) -> dict:
        return {"bytes": self.bytes, "files": self.files}


@dataclass
class CacheUsage:
    cache: Path
    parts: dict[str, Usage] = field(default_factory=lambda: {name: Usage() for name in PARTS})

    @property
    def total(self) -> int:
        return sum(u.bytes for u in self.parts.values())


def part_of(rel: str) -> str:
    """The part a path relative to the cache belongs to (staging aside)."""
    for folder, part in _FOLDERS:
        if rel == folder or rel.startswith(folder + "/"):
            return part
    return "other"


def measure(cache: Path) -> CacheUsage:
    """What each part of ``cache`` holds."""
    usage = CacheUsage(cache)
    seen: set[tuple[int, int]] = set()
    staging = {e.path for e in staging_entries(cache)}
    for path in staging:
        tree_usage(path, usage.parts["staging"], seen)
    for root, dirs, files in os.walk(cache):
        here = Path(root)
        dirs[:] = [d for d in dirs if here / d not in staging]
        rel = os.path.relpath(root, cache)
        for name in files:
            if here / name in staging:
                continue
            _add_file(here / name, usage.parts[part_of(name if rel == "." else f"{rel}/{name}")], seen)
    return usage


def tree_usage(path: Path, usage: Usage | None = None, seen: set | None = None) -> Usage:
    """The regular files at or under ``path`` (added to ``usage``; ``seen``: inodes counted before)."""
    usage = Usage() if usage is None else usage
    seen = set() if seen is None else seen
    if not path.is_dir() or path.is_symlink():
        _add_file(path, usage, seen)
        return usage
    for root, _dirs, files in os.walk(path):
        for name in files:
            _add_file(Path(root) / name, usage, seen)
    return usage


def _add_file(path: Path, usage: Usage, seen: set) -> None:
    try:
        info = path.lstat()
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) in seen:
        return
    seen.add((info.st_dev, info.st_ino))
    usage.bytes += info.st_size
    usage.files += 1
