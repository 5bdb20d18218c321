"""One walk over package content (model files, code folders): only regular files and folders.

Policy, the same for files and folders, for the workspace store and the build context alike:

- The root (a model path, a code folder) is followed when it is a link: the user named it.
- The filesystem root ``/`` and anything on a kernel pseudo filesystem (``/proc``, ``/sys``,
  ``/dev`` and any procfs, sysfs, devtmpfs... mounted elsewhere) is refused; so are sockets, FIFOs
  and device files. ``/proc`` files claim a size of 0 whatever they hold: they are refused as a class.
- A link below the root whose target resolves inside the tree is dereferenced: it is stored as the
  regular file or folder it points to. A link leaving the tree, a dangling link and a link loop are
  refused, naming the link.
- A file whose size changes while it is read is refused (``open_exact``).

Every refusal is a ``ContentError`` (a ``ResolveError``: one line, exit 2) naming the path.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from compiler.errors import ResolveError, excerpt

PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
PSEUDO_FILESYSTEMS = frozenset(
    "proc sysfs devtmpfs devpts debugfs tracefs securityfs cgroup cgroup2 configfs fusectl pstore bpf mqueue "
    "efivarfs binfmt_misc autofs rpc_pipefs nsfs".split()
)
COPY_STEP = 1 << 30  # bytes per copy_file_range call
MAX_ENTRIES = 500_000  # links inside a tree may repeat folders: bound what one walk may produce
CACHE_NAMES = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store"})


class ContentError(ResolveError):
    """A path that cannot become package content."""


def shown(path: Path | str) -> str:
    """A path for a one-line message: bytes that are not UTF-8 and control characters escaped, at
    most ~100 characters."""
    text = str(path)
    try:
        raw = os.fsencode(text)  # names read from disk: their bytes
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return excerpt(raw.decode("utf-8", "backslashreplace"))


@dataclass(frozen=True)
class Entry:
    """One file or folder of a walked tree."""

    rel: str  # '/'-separated path below the root, '' for the root itself
    path: Path  # where to read it: the entry itself, or the target of a link inside the tree
    is_dir: bool
    executable: bool


def skip_caches(name: str, is_dir: bool) -> bool:
    """The ``ignore`` of code folders: caches and version control never enter a package."""
    return name in CACHE_NAMES or (not is_dir and name.endswith(".pyc"))


def _pseudo_devices() -> frozenset[int]:
    """Device numbers of the kernel pseudo filesystems mounted on this machine (from mountinfo)."""
    devices = set()
    try:
        lines = Path("/proc/self/mountinfo").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 3:
            continue
        fstype = line.split(" - ", 1)[1].split()[0]
        if fstype in PSEUDO_FILESYSTEMS:
            major, _, minor = fields[2].partition(":")
            if major.isdigit() and minor.isdigit():
                devices.add(os.makedev(int(major), int(minor)))
    for root in PSEUDO_ROOTS:
        try:
            devices.add(os.stat(root).st_dev)
        except OSError:
            pass
    return frozenset(devices)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: refused below, naming it
        return False


def _under_pseudo_root(real: str) -> bool:
    return any(real == root or real.startswith(root + "/") for root in PSEUDO_ROOTS)


class _Walker:
    """One walk: the pseudo filesystems' devices read once, the entries gathered in order."""

    def __init__(self, ignore: Callable[[str, bool], bool] | None):
        self.ignore = ignore or (lambda _name, _is_dir: False)
        self.devices = _pseudo_devices()
        self.entries: list[Entry] = []
        self.tree = ""

    def kind(self, named: Path | str, real: str, st: os.stat_result) -> bool:
        """True for a folder, False for a regular file; anything else is refused, naming ``named``."""
        if st.st_dev in self.devices or _under_pseudo_root(real):
            raise ContentError(f"{shown(named)}: is on a kernel pseudo filesystem (/proc, /sys, /dev), not package content")
        if stat.S_ISDIR(st.st_mode):
            return True
        if stat.S_ISREG(st.st_mode):
            return False
        kinds = {stat.S_IFSOCK: "a socket", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
        what = kinds.get(stat.S_IFMT(st.st_mode), "a special file")
        raise ContentError(f"{shown(named)}: is {what}; only regular files and folders can be package content")

    def root(self, root: Path) -> tuple[str, os.stat_result, bool]:
        """The real path, status and kind of ``root`` (a link is followed)."""
        try:
            real = os.path.realpath(root, strict=True)
            st = os.stat(real)
        except (OSError, RuntimeError):
            raise ContentError(f"{shown(root)}: does not exist (or is a dangling link or a link loop)") from None
        if real == "/":
            raise ContentError(f"{shown(root)}: the filesystem root cannot be package content; name a folder")
        return real, st, self.kind(root, real, st)

    def follow(self, link: str) -> tuple[str, os.stat_result]:
        """The target of a link below the root: it must exist and resolve inside the tree."""
        try:
            real = os.path.realpath(link, strict=True)
            st = os.stat(real)
        except (OSError, RuntimeError) as exc:
            loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
            why = "is a link loop" if loop else "is a dangling link"
            raise ContentError(f"{shown(link)}: {why}; links must point to files or folders inside the tree") from None
        if not (real == self.tree or real.startswith(self.tree + "/")):
            raise ContentError(f"{shown(link)}: is a link leaving the tree (to {shown(real)}); links must stay inside it")
        return real, st

    def add(self, rel: str, real: str, is_dir: bool, st: os.stat_result) -> None:
        if len(self.entries) >= MAX_ENTRIES:
            raise ContentError(f"{shown(real)}: more than {MAX_ENTRIES} files and folders (links repeating folders?)")
        self.entries.append(Entry(rel, Path(real), is_dir, bool(st.st_mode & stat.S_IXUSR)))

    def children(self, folder: str) -> tuple[list, list]:
        """The files and the sub-folders of the real folder ``folder``, each as (path, name, real path, status), sorted."""
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ContentError(f"{shown(folder)}: cannot be read ({exc.strerror})") from None
        files, folders = [], []
        for child in children:
            if self.ignore(child.name, _is_dir(child)):
                continue
            if child.is_symlink():
                real, st = self.follow(child.path)
            else:
                real, st = child.path, child.stat(follow_symlinks=False)
            (folders if self.kind(child.path, real, st) else files).append((child.path, child.name, real, st))
        return files, folders

    def folder(self, top: str, st: os.stat_result) -> None:
        """Walk the real folder ``top``: a folder's entry, its files sorted, then its sub-folders
        sorted, depth first; with a stack, not recursion: how deep folders nest is the user's choice."""
        stack = [(top, "", st, frozenset({(st.st_dev, st.st_ino)}))]
        while stack:
            folder, rel, fst, ancestors = stack.pop()
            if rel:
                self.add(rel, folder, True, fst)
            files, folders = self.children(folder)
            for _path, name, real, child_st in files:
                self.add(f"{rel}/{name}" if rel else name, real, False, child_st)
            for path, name, real, child_st in reversed(folders):
                key = (child_st.st_dev, child_st.st_ino)
                if key in ancestors:
                    raise ContentError(f"{shown(path)}: is a link loop (it leads back to {shown(real)})")
                stack.append((real, f"{rel}/{name}" if rel else name, child_st, ancestors | {key}))


def walk(root: Path, ignore: Callable[[str, bool], bool] | None = None) -> list[Entry]:
    """The root, then its files and folders depth first (each folder's files, sorted, before its
    sub-folders, sorted); ``ignore(name, is_dir)`` skips an entry and, for a folder, what it holds."""
    walker = _Walker(ignore)
    real, st, is_dir = walker.root(root)
    walker.tree = real
    walker.add("", real, is_dir, st)
    if is_dir:
        walker.folder(real, st)
    return walker.entries


class ExactReader:
    """Reads exactly the size a regular file had when opened; refuses it if it grew or shrank."""

    def __init__(self, fh: BinaryIO, size: int, path: Path):
        self._fh, self.size, self._left, self._path = fh, size, size, path

    def _changed(self) -> ContentError:
        return ContentError(f"{shown(self._path)}: changed size while being read; package content must hold still")

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        chunks = []
        while want > 0:
            block = self._fh.read(want)
            if not block:
                raise self._changed()
            chunks.append(block)
            want -= len(block)
            self._left -= len(block)
        return b"".join(chunks)

    def copy_to(self, out_fd: int) -> None:
        """Copy what is left to read to ``out_fd`` at its position, in the kernel where it can
        (``copy_file_range``: no bytes through Python; shared extents where the filesystem can)."""
        src = self._fh.fileno()
        while self._left > 0:
            try:
                n = os.copy_file_range(src, out_fd, min(self._left, COPY_STEP), self.size - self._left)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                self._fh.seek(self.size - self._left)
                return self._write_through_python(out_fd)
            if n == 0:
                raise self._changed()
            self._left -= n
        self._fh.seek(self.size)  # where ``finish`` looks for bytes beyond the size

    def _write_through_python(self, out_fd: int) -> None:
        while self._left > 0:
            view = memoryview(self.read(min(self._left, 1 << 20)))
            while view:
                view = view[os.write(out_fd, view) :]

    def finish(self) -> None:
        """Refuse the file when more bytes follow than it had when opened."""
        if self._left or self._fh.read(1) or os.fstat(self._fh.fileno()).st_size != self.size:
            raise self._changed()


@contextmanager
def open_exact(path: Path) -> Iterator[ExactReader]:
    """Open a regular file (never a link, FIFO or device: those were walked before) for an exact read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ContentError(f"{shown(path)}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ContentError(f"{shown(path)}: is no longer a regular file; package content must hold still")
        reader = ExactReader(fh, st.st_size, path)
        yield reader
        reader.finish()
