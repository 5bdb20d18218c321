"""Least recently used: a cached file's last use is the later of its access and modification times,
and a run that uses one marks it (``mark_used``), since file systems mounted ``noatime`` or
``relatime`` do not keep access times for us."""

from __future__ import annotations

import os
from pathlib import Path


def mark_used(path: Path) -> None:
    """Record that ``path`` was used now, best effort: a read-only cache still serves."""
    try:
        os.utime(path)
    except OSError:
        pass


def last_use(info: os.stat_result) -> float:
    return max(info.st_atime, info.st_mtime)
