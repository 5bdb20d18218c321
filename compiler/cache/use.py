"""Who uses the cache: every run that writes it (build, lock, base-image, model package) holds a
shared lock on ``<cache>/.pkgc-use.lock`` while it runs; ``pkgc cache prune`` takes it exclusively
before it removes anything a run could be using (store blobs not yet named, pyc and fetched files).
The kernel drops a killed process's lock, so no lock outlives its run.

On taking it, a run removes the staging of runs that are gone (``sweep``): entries whose owner (in
their name, ``compiler.cache.owner``) no longer runs; when no other run holds the cache, also
untagged ones (an older pkgc's) not touched for ``UNTAGGED_GRACE`` seconds. The fan-out folders
of the pyc cache and the fetched files (hundreds of folders: 0.1 s) are swept at most once every
``FANNED_SWEEP_EVERY`` seconds (``<cache>/.pkgc-swept`` records when), the rest on every run."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from compiler.cache.owner import remove_tree
from compiler.cache.parts import staging_entries, tree_usage

LOCK_NAME = ".pkgc-use.lock"
UNTAGGED_GRACE = 600.0
FANNED_SWEEP_EVERY = 600.0
SWEPT_NAME = ".pkgc-swept"


def _open_lock(cache: Path) -> int | None:
    """The lock file's descriptor, None when the cache cannot hold one (read-only, not creatable):
    then nothing can be pruned there either."""
    path = cache / LOCK_NAME
    try:
        cache.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError:
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None


def _try(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@dataclass
class Swept:
    """What a sweep removed: entries and their bytes (measured before removal)."""

    entries: int = 0
    bytes: int = 0


def sweep(cache: Path, alone: bool, now: float | None = None, fanned: bool = True) -> Swept:
    """Remove the staging of runs that are gone; ``alone`` (no other run holds the cache): also
    untagged staging older than the grace period (``fanned``: in the fan-out folders too). Never
    raises for what cannot be removed."""
    now = time.time() if now is None else now
    swept = Swept()
    for entry in staging_entries(cache, fanned):
        if entry.owner_alive:
            continue
        if entry.owner_alive is None:
            if not alone or _age(entry.path, now) < UNTAGGED_GRACE:
                continue
        size = _size(entry.path)
        try:
            remove_tree(entry.path)
        except OSError:
            continue
        if not os.path.lexists(entry.path):
            swept.entries += 1
            swept.bytes += size
    return swept


def _age(path: Path, now: float) -> float:
    """Seconds since anything at or under ``path`` changed (a long assembly may leave its top folder alone)."""
    newest = 0.0
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    except OSError:
        return 0.0  # changing under us: someone is at work there
    return now - newest


def _size(path: Path) -> int:
    return tree_usage(path).bytes


@contextmanager
def cache_in_use(cache: Path) -> Iterator[None]:
    """Hold ``cache`` for this run (shared with other runs, never with a prune) and sweep the
    staging that gone runs left."""
    fd = _open_lock(cache)
    if fd is None:
        yield
        return
    try:
        if _try(fd, fcntl.LOCK_EX):  # no one else here: every stale entry may go
            _quietly_sweep(cache, alone=True)
            fcntl.flock(fd, fcntl.LOCK_SH)
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a prune runs
            _quietly_sweep(cache, alone=False)
        yield
    finally:
        os.close(fd)


def _stamp(path: Path) -> None:
    """``path`` now stamped (created if missing; a link there is not followed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.utime(fd)
    finally:
        os.close(fd)


def _quietly_sweep(cache: Path, alone: bool) -> None:
    try:
        stamp = cache / SWEPT_NAME
        now = time.time()
        try:
            fanned = not 0 <= now - stamp.stat().st_mtime < FANNED_SWEEP_EVERY
        except OSError:
            fanned = True  # never swept (or the stamp is unreadable): the whole cache
        sweep(cache, alone, now, fanned)
        if fanned:
            _stamp(stamp)
    except OSError:  # a cache that cannot be swept still serves the run
        pass


@contextmanager
def exclusive(cache: Path) -> Iterator[bool]:
    """Hold ``cache`` alone if no run holds it: yields whether it does (False: runs are using it)."""
    fd = _open_lock(cache)
    if fd is None:
        yield False
        return
    try:
        yield _try(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)
