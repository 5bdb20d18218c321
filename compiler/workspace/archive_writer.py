"""Writes a checked archive's members below one folder, with no link of the archive followed.

Why nothing is followed, whatever the archive holds:

- the folder is pkgc's own staging folder (``mkdtemp``: mode 0700, no one else writes in it);
- ``MemberTable`` refuses every member whose name passes through a link (or a file) of the archive;
- the archive's symbolic links are made last, after every file, folder and hard link: while members
  are written there is no link in the tree at all, and no link is made below another;
- every name is created new (``O_CREAT | O_EXCL | O_NOFOLLOW``, ``mkdir``, ``linkat`` and
  ``symlinkat`` never follow their last component), relative to the folder's descriptor.

The kernel resolves each member's path in one call (no per-component walk from Python: a hostile
archive of 100 000 members 2 000 folders deep costs a kernel path walk each, not 2 000 system calls).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeWriter:
    """Creates folders, files and links below ``root`` (a folder pkgc made); close() when done."""

    def __init__(self, root: str):
        self._root = os.open(root, DIR_FLAGS)

    def close(self) -> None:
        os.close(self._root)

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def folders(self, paths: tuple[str, ...]) -> None:
        """Make each folder of ``paths`` (outermost first)."""
        for path in paths:
            os.mkdir(path, 0o755, dir_fd=self._root)

    def file(self, path: str, source: BinaryIO, executable: bool, count: Callable[[int], None]) -> int:
        """Copy ``source`` into a new file ``path``; ``count`` sees each block's size first (it may raise)."""
        fd = os.open(path, FILE_FLAGS, 0o755 if executable else 0o644, dir_fd=self._root)
        written = 0
        with os.fdopen(fd, "wb", closefd=True) as sink:
            while block := source.read(CHUNK):
                count(len(block))
                sink.write(block)
                written += len(block)
        return written

    def hard_link(self, path: str, source: str) -> None:
        """``path`` as a second name of the file ``source`` (not followed if it were a link)."""
        os.link(source, path, src_dir_fd=self._root, dst_dir_fd=self._root, follow_symlinks=False)

    def symlink(self, path: str, target: str) -> None:
        os.symlink(target, path, dir_fd=self._root)
