"""A full disk or a folder pkgc cannot write, as one line naming the path (exit 3), not a traceback.

Exit 3 (build failure), not 2: nothing in the user's input is wrong; the same command succeeds once
the host has room or the folder is writable (a CI step's retry after ``pkgc cache prune`` is the
usual fix), and scripts keep telling "fix your spec" (2) from "the build could not finish" (3).

Which path: the one the failed call named (the destination of a copy or rename); a write to an open
file names none, so the fullest of pkgc's folders (cache, workspace, temporary folder) is named.
``EACCES``/``EPERM``/``ENOTDIR`` count only in pkgc's own folders (elsewhere they are about the user's input)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from compiler.errors import PkgcError, excerpt

FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
NOT_WRITABLE = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted",
                errno.ENOTDIR: "a file where a folder must be"}  # fmt: skip


class StorageFault(PkgcError):
    """The host could not store what the run made; one line, no log tail (the log may be where the
    fault is)."""

    exit_code = 3
    shows_log = False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.absolute().relative_to(folder.absolute())
        return True
    except ValueError:
        return False


def _free(folder: Path) -> int | None:
    try:
        info = os.statvfs(folder)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def _fullest(folders: list[Path]) -> Path:
    existing = [(free, i, f) for i, f in enumerate(folders) if (free := _free(f)) is not None]
    return min(existing)[2] if existing else folders[0]


def storage_fault(exc: OSError, cache: Path, workspace: Path) -> StorageFault | None:
    """The one line for ``exc`` when it is a storage fault, else None (the error stays what it is)."""
    named = exc.filename2 if exc.filename2 is not None and exc.errno in FULL else exc.filename
    path = Path(os.fsdecode(named)) if isinstance(named, (str, bytes)) and named else None
    ours = (cache, workspace)
    if exc.errno in FULL:
        where = path or _fullest([cache, workspace, Path(tempfile.gettempdir())])
        hint = ("pkgc's cache: 'pkgc cache du' shows what it holds, 'pkgc cache prune --max-size SIZE' frees it"
                if _inside(where, cache) else "free space there and run again")  # fmt: skip
        return StorageFault(f"{_shown(where)}: {FULL[exc.errno]} ({hint})")
    if exc.errno in NOT_WRITABLE and path is not None:
        if exc.errno != errno.EROFS and not any(_inside(path, folder) for folder in ours):
            return None
        if _inside(path, cache):
            hint = "pkgc's cache must be writable: set PKGC_CACHE_DIR to a folder that is"
        elif _inside(path, workspace):
            hint = "the workspace must be writable: set PKGC_WORKSPACE or --workspace to a folder that is"
        else:
            hint = "pkgc cannot write there"
        return StorageFault(f"{_shown(path)}: {NOT_WRITABLE[exc.errno]} ({hint})")
    return None


def _shown(path: Path) -> str:
    """The path for the line: a temporary file's folder (its own name says nothing)."""
    if path.name.startswith(".") and ".partial" in path.name:
        path = path.parent
    return excerpt(str(path), 200)
