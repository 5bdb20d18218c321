"""Writes a checked archive's members below one folder without ever following a link.

Every path is opened one component at a time relative to a folder descriptor, with ``O_NOFOLLOW``
(and ``O_DIRECTORY`` for folders), and every file is created with ``O_CREAT | O_EXCL``: whatever the
archive or anyone else left in the tree, a write lands in the folder pkgc created or fails. The policy
(which members, which links) is ``archive_members``; this module only writes what it is told.
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
        self._cached: tuple[str, int] | None = None  # the last parent folder opened: members come grouped

    def close(self) -> None:
        self._drop_cache()
        os.close(self._root)

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _folder(self, path: str) -> int:
        """A descriptor of folder ``path`` (made when missing), reached with no link followed."""
        if not path:
            return self._root
        if self._cached is not None and self._cached[0] == path:
            return self._cached[1]
        fd = os.dup(self._root)
        try:
            for part in path.split("/"):
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self._drop_cache()
        self._cached = (path, fd)
        return fd

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        parent, _, name = path.rpartition("/")
        return parent, name

    def folder(self, path: str) -> None:
        self._folder(path)

    def file(self, path: str, source: BinaryIO, executable: bool, count: Callable[[int], None]) -> int:
        """Copy ``source`` into a new file ``path``; ``count`` sees each block's size first (it may raise)."""
        parent, name = self._split(path)
        fd = os.open(name, FILE_FLAGS, 0o755 if executable else 0o644, dir_fd=self._folder(parent))
        written = 0
        with os.fdopen(fd, "wb", closefd=True) as sink:
            while block := source.read(CHUNK):
                count(len(block))
                sink.write(block)
                written += len(block)
        return written

    def hard_link(self, path: str, source: str) -> None:
        """``path`` as a second name of the file ``source`` (neither followed if a link)."""
        source_parent, source_name = self._split(source)
        source_fd = os.dup(self._folder(source_parent))
        try:
            parent, name = self._split(path)
            os.link(source_name, name, src_dir_fd=source_fd, dst_dir_fd=self._folder(parent), follow_symlinks=False)
        finally:
            os.close(source_fd)

    def symlink(self, path: str, target: str) -> None:
        parent, name = self._split(path)
        os.symlink(target, name, dir_fd=self._folder(parent))
