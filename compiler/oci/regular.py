"""Open only regular files: no symbolic link is followed, and a FIFO, device or socket is refused
before a byte is read (the open itself is non-blocking, so a FIFO cannot hang it).

Used for every file pkgc reads from an input it does not control (an OCI layout's members) and for
files copied into its blob store."""

from __future__ import annotations

import errno
import os
import stat

NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class NotRegularFile(ValueError):
    """``name`` is a link, FIFO, device, socket or folder, not the regular file (or folder) expected."""

    def __init__(self, name: str, kind: str, expected: str = "a regular file"):
        self.name, self.kind = name, kind
        self.why = f"is {kind}, not {expected}"
        super().__init__(f"{name} {self.why}")


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words."""
    for test, kind in ((stat.S_ISREG, "a regular file"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return kind
    return "a special file"


def open_regular(name: str | os.PathLike, dir_fd: int | None = None, follow: bool = False) -> tuple[int, int]:
    """``(fd, size)`` of the regular file ``name`` (relative to ``dir_fd`` if given), opened for reading.

    The file is looked at before it is opened (no device is opened at all) and again on the opened
    descriptor (so a swap in between is caught too). ``follow``: the last component may be a link to a
    regular file (a path the user named himself). NotRegularFile otherwise; OSError when it is missing."""
    flags = NO_FOLLOW & ~os.O_NOFOLLOW if follow else NO_FOLLOW
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=follow)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFile(os.fsdecode(name), kind_of(before.st_mode))
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFile(os.fsdecode(name), "a symbolic link") from None
        raise
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise NotRegularFile(os.fsdecode(name), kind_of(opened.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, opened.st_size


def open_folder(name: str, dir_fd: int | None = None, follow: bool = False) -> int:
    """A descriptor of the folder ``name`` (a link to one only with ``follow``); NotRegularFile when it
    is something else."""
    try:
        return os.open(name, FOLDER & ~os.O_NOFOLLOW if follow else FOLDER, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            raise NotRegularFile(name, kind_of(found.st_mode), "a folder") from None
        raise


def read_at(fd: int, offset: int, size: int) -> bytes:
    """Exactly ``size`` bytes at ``offset`` (fewer only when the file ends first)."""
    parts, done = [], 0
    while done < size:
        block = os.pread(fd, size - done, offset + done)
        if not block:
            break
        parts.append(block)
        done += len(block)
    return b"".join(parts)
