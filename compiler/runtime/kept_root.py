"""Root filesystems kept in pkgc's cache for programs pkgc runs from an image more than once (the
base image's Python compiling byte-code): ``<cache>/bases/<key>/root``, made once per key (the
platform and the image's manifest digest) in a staging folder named for this process and renamed
into place with a ``ready`` marker; a run that finds it ready uses it as it is. Two runs making one
at once each stage their own and the second's rename finds the first's (its own is removed). A
killed run's staging is swept as any (``compiler.cache.parts.STAGING``); ``pkgc cache prune
--max-size`` evicts the least recently used (``compiler.cache.prune``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from compiler.cache.lru import mark_used
from compiler.cache.owner import staging_dir

FOLDER = "bases"
READY = "ready"
STAGING_PREFIX = ".staging-"


def kept_root(cache_dir: Path, key: str, prepare: Callable[[Path], None]) -> Path:
    """The kept root filesystem ``key`` (safe as a file name), made by ``prepare(root)`` (an empty
    folder) when there is none yet."""
    folder = cache_dir / FOLDER / key
    if (folder / READY).is_file():
        mark_used(folder / READY)
        return folder / "root"
    with staging_dir(cache_dir / FOLDER, STAGING_PREFIX) as staging:
        root = staging / "root"
        root.mkdir(mode=0o755)
        prepare(root)
        (staging / READY).write_text(key + "\n")
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / READY).is_file():
                raise
    return folder / "root"
