"""The staging folder an archive is unpacked into: ``$TMPDIR/pkgc-unpack-*``, removed when the unpack
is done, and by the next unpack when its writer was killed (an archive may stage up to 20 GiB).

A live staging folder holds ``.lock``, locked (``flock``) by its writer for as long as the folder
exists; the lock is made as ``.lock-init``, locked, then renamed, so no one sees an unlocked ``.lock``
of a live writer. A folder of this user whose ``.lock`` nobody holds, or that has no ``.lock`` and has
not changed for a minute (its writer killed before locking), is a leftover and is removed. Links are
never followed (``shutil.rmtree`` works from folder descriptors).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compiler.workspace.trees import lock_if_free

PREFIX = "pkgc-unpack-"
LOCK, LOCK_INIT = ".lock", ".lock-init"
GRACE = 60.0  # seconds a staging folder may exist before its lock
OPEN_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


def _leftover(folder: str, mtime: float) -> int | None:
    """A descriptor holding ``folder``'s lock when its writer is gone (-1: it never locked); None when alive."""
    try:
        fd = os.open(os.path.join(folder, LOCK), OPEN_FLAGS)
    except FileNotFoundError:
        return -1 if time.time() - mtime > GRACE else None
    except OSError:
        return None
    return lock_if_free(fd)


def remove_leftovers(parent: Path) -> list[str]:
    """Remove the staging folders in ``parent`` that killed unpacks left; their names."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid != os.getuid() or (fd := _leftover(entry.path, info.st_mtime)) is None:
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
        finally:
            if fd >= 0:
                os.close(fd)
    return removed


@contextmanager
def staging_folder() -> Iterator[Path]:
    """A new, locked staging folder in the temp folder; removed afterwards, whatever happens."""
    remove_leftovers(Path(tempfile.gettempdir()))
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    fd = None
    try:
        fd = os.open(folder / LOCK_INIT, OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(folder / LOCK_INIT, folder / LOCK)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if fd is not None:
            os.close(fd)
