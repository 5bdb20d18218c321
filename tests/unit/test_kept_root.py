"""Root filesystems kept in the cache (``compiler.runtime.kept_root``): made once per key, found
ready the next time, a second maker's staging removed when the first got there first, measured as
their own part of the cache and evicted least recently used by ``pkgc cache prune --max-size``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from compiler.cache.parts import measure, staging_entries
from compiler.cache.prune import prune_cache
from compiler.runtime.kept_root import FOLDER, kept_root


def fill(root: Path, size: int = 1000) -> None:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3.11").write_bytes(b"\x7fELF" + b"\0" * size)
    os.symlink("usr/bin", root / "bin")


def test_made_once_then_found_ready(tmp_path):
    made: list[Path] = []
    root = kept_root(tmp_path, "amd64-aa", lambda r: (made.append(r), fill(r)))
    again = kept_root(tmp_path, "amd64-aa", lambda r: made.append(r))
    assert root == again == tmp_path / FOLDER / "amd64-aa" / "root" and len(made) == 1
    assert (root / "bin/python3.11").is_file() and not staging_entries(tmp_path)


def test_a_second_maker_keeps_the_first_s_and_leaves_no_staging(tmp_path):
    def racing(root: Path) -> None:  # another run finishes the same key while this one unpacks
        fill(root)
        kept_root(tmp_path, "amd64-bb", lambda other: fill(other, 5))

    root = kept_root(tmp_path, "amd64-bb", racing)
    assert (root / "usr/bin/python3.11").stat().st_size == 9  # the first to be ready: the inner one
    assert [p.name for p in (tmp_path / FOLDER).iterdir()] == ["amd64-bb"]


def test_measured_and_evicted_least_recently_used(tmp_path):
    old = kept_root(tmp_path, "amd64-old", lambda r: fill(r, 400_000)).parent
    new = kept_root(tmp_path, "amd64-new", lambda r: fill(r, 400_000)).parent
    os.utime(old / "ready", (time.time() - 3600,) * 2)
    assert measure(tmp_path).parts["unpacked bases"].bytes >= 800_000
    result = prune_cache(tmp_path, max_size=500_000)
    assert not old.exists() and new.exists() and result.removed["unpacked bases"].bytes >= 400_000
