"""Version reservations: a build takes its package version before it tags or records anything.

A reservation is ``<name>/<version>.reserved`` beside the version records, created exclusively
(under the workspace lock) and holding the owner's pid. It counts when the next version is chosen,
so two concurrent builds never share a version; it is not a record, so nothing lists or resolves
it; a reservation whose process is gone (a killed build) is removed by the next reservation.
"""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".reserved"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def reserved_versions(folder: Path) -> list[str]:
    """Versions reserved in ``folder`` by live processes; stale reservations are removed."""
    if not folder.is_dir():
        return []
    versions = []
    for path in folder.glob(f"*{SUFFIX}"):
        owner = _owner(path)
        if owner is None or not _alive(owner):
            path.unlink(missing_ok=True)
            continue
        versions.append(path.name.removesuffix(SUFFIX))
    return versions


def reserve(folder: Path, version: str) -> bool:
    """Reserve ``version`` in ``folder`` for this process; False when someone else holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / f"{version}{SUFFIX}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")
    return True


def held_here(folder: Path, version: str) -> bool:
    """Whether this process holds the reservation of ``version``."""
    return _owner(folder / f"{version}{SUFFIX}") == os.getpid()


def release(folder: Path, version: str) -> None:
    """Drop this process's reservation of ``version`` (after its record is written, or on failure)."""
    if held_here(folder, version):
        (folder / f"{version}{SUFFIX}").unlink(missing_ok=True)
