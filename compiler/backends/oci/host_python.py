"""The build digest of the Python running pkgc, remembered in the cache by its files' status.

Hashing the running interpreter (its executable, ``libpython`` and ~1,400 standard-library files,
56 MB for Debian's 3.11) costs 0.3-0.4 s, paid on every build where that Python may be the base's
(``base_python._may_be_the_base_s``: Debian's own ``/usr/bin/python3`` on a Debian base). Its files
change only when the Python is reinstalled or upgraded, which changes their inode, size, mtime or
ctime (a file rewritten in place changes its ctime, which no program can set back), so the digest is
kept under ``<cache>/host-python/<key>``, the key being the sha256 of every file's path and those
fields: listing and ``lstat``-ing them costs 0.04 s. A record that is not 64 hex digits, or is a
link, is ignored and written again."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from compiler.cache.owner import staging_name

FOLDER = "host-python"
RECORD = re.compile(rb"[0-9a-f]{64}")


def status_key(files: list[str]) -> str:
    """What the files' digest depends on, as the file system reports it: a change to any of them
    (or a file added or removed) gives another key."""
    lines = []
    for path in sorted(files):
        try:
            info = os.lstat(path)
        except OSError:
            lines.append(f"{path}\0missing")
            continue
        link = os.readlink(path) if os.path.islink(path) else ""
        lines.append(f"{path}\0{info.st_dev}\0{info.st_ino}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0{link}")
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def _read(record: Path) -> str | None:
    try:
        fd = os.open(record, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(65)
    return data.decode() if RECORD.fullmatch(data) else None


def _write(record: Path, digest: str) -> None:
    """Written whole under a dot name (swept as staging if this run dies), then renamed into place (a record already there, even a link, is replaced, not followed)."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=staging_name("."), dir=record.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(digest.encode())
        os.replace(partial, record)
    except OSError:
        pass  # a cache that cannot keep it: the next build hashes again


def remembered_build(files: list[str], compute, cache_dir: Path | None) -> str:
    """``compute(files)`` (the files' build digest), or what an earlier run kept for the same files
    in the same state."""
    if cache_dir is None:
        return compute(files)
    record = Path(cache_dir) / FOLDER / status_key(files)
    kept = _read(record)
    if kept is not None:
        return kept
    digest = compute(files)
    _write(record, digest)
    return digest
