"""An image's root filesystem unpacked into a folder of pkgc's cache: layers applied in order, whiteouts
and opaque folders honoured, nothing written outside the folder.

The model-archive unpacker (``compiler.workspace.archives``) does not fit a root filesystem: a rootfs
holds absolute links (``/lib -> usr/lib``), later layers replace what earlier ones made, and a member
may lie below a folder link of a lower layer. So links are resolved here the way the kernel resolves
them inside a chroot: within the folder, an absolute target from the folder's top, ``..`` never above
it, at most ``MAX_LINK_HOPS`` links per name (a loop is refused). Every name is then created with no
link followed (``O_NOFOLLOW | O_EXCL``, ``symlink``, ``link`` with ``follow_symlinks=False``). Devices
and FIFOs are skipped; set-id bits are dropped. Reads are bounded by ``compiler.runtime.image_layers``
and the bytes written by ``max_bytes``.

The folder is ``<cache>/rootfs/pkgc-unpack-*``: locked while in use and removed afterwards; one a
killed run left is removed by the next (``compiler.workspace.unpack_staging``)."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from compiler.errors import excerpt
from compiler.runtime.image_layers import (LAYER_ERRORS, LayerError, LayerLimits, PlatformImage, layer_members,
                                           member_path, whiteout_of)  # fmt: skip
from compiler.workspace.unpack_staging import LOCK, LOCK_INIT, OPEN_FLAGS, PREFIX, remove_leftovers

MAX_LINK_HOPS = 40  # as Linux
CHUNK = 1 << 20
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MODE_BITS = 0o1777  # permissions and the sticky bit; set-uid and set-gid dropped


@dataclass(frozen=True)
class RootfsLimits:
    layers: LayerLimits = field(default_factory=LayerLimits)
    max_bytes: int = 64 << 30  # file content written, all layers together


@dataclass(frozen=True)
class RootfsStats:
    files: int
    bytes: int
    skipped: int  # devices, FIFOs, hard links to nothing


class _Problem(Exception):
    """Why one member cannot be unpacked; the caller names the image, the layer and the member."""


class _Tree:
    """Writes below ``root`` (an absolute path pkgc made), resolving names within it."""

    def __init__(self, root: str, limits: RootfsLimits):
        self.root, self.limits = root, limits
        self.written = self.files = self.skipped = 0
        self.as_root = os.geteuid() == 0

    def at(self, parts: list[str]) -> str:
        return os.path.join(self.root, *parts)

    def real(self, parts: list[str]) -> list[str]:
        """``parts`` with every link followed inside the root (a missing name is taken as it is)."""
        out: list[str] = []
        pending, hops = list(reversed(parts)), 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if out:
                    out.pop()
                continue
            try:
                info = os.lstat(self.at(out + [part]))
            except (FileNotFoundError, NotADirectoryError):
                out.append(part)
                continue
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise _Problem(f"lies behind more than {MAX_LINK_HOPS} links (a loop of links)")
                target = os.readlink(self.at(out + [part]))
                if target.startswith("/"):
                    out = []
                pending.extend(reversed(target.split("/")))
            else:
                out.append(part)
        return out

    def folders(self, parts: list[str]) -> None:
        """Make the folders ``parts`` (already resolved); a file in the way is replaced."""
        for depth in range(1, len(parts) + 1):
            here = self.at(parts[:depth])
            try:
                info = os.lstat(here)
            except FileNotFoundError:
                try:
                    os.mkdir(here, 0o755)
                except FileExistsError:  # another run made it meanwhile (a root kept in the cache)
                    if not os.path.isdir(here) or os.path.islink(here):
                        raise
                continue
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(here)
                os.mkdir(here, 0o755)

    def remove(self, path: str) -> None:
        """Whatever is at ``path`` (no link followed: a link is removed, not its target)."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def clear(self, path: str, keep: set[str]) -> None:
        """An opaque folder: its entries from lower layers go (``keep``: those this layer made)."""
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if os.path.join(path, name) not in keep:
                self.remove(os.path.join(path, name))

    def add(self, member, keep: set[str]) -> None:
        info = member.info
        relative = member_path(info.name)
        if relative is None:
            return
        *parents, name = relative.split("/")
        where = self.real(parents)
        whiteout = whiteout_of(name)
        if whiteout is not None:
            hidden, opaque = whiteout
            target = self.at(where + ([hidden] if hidden else []))
            self.clear(target, keep) if opaque else self.remove(target)
            return
        self.folders(where)
        dest = self.at(where + [name])
        keep.add(dest)
        mode = info.mode & MODE_BITS
        if info.isdir():
            try:
                if stat.S_ISDIR(os.lstat(dest).st_mode):
                    os.chmod(dest, mode | 0o700)
                    return self._own(dest, info)
                self.remove(dest)
            except FileNotFoundError:
                pass
            os.mkdir(dest, 0o700)
            os.chmod(dest, mode | 0o700)  # not mkdir's mode: the umask would take /tmp's 1777 to 1755
            return self._own(dest, info)
        self.remove(dest)
        if info.isfile() and not info.issparse():
            self._file(dest, member, mode)
        elif info.issym():
            os.symlink(info.linkname, dest)
        elif info.islnk():
            linked = (member_path(info.linkname) or "").split("/")
            source = self.at(self.real(linked[:-1]) + linked[-1:]) if linked[-1] else None
            if source is None or not stat.S_ISREG(_lstat_mode(source)):
                self.skipped += 1
                return
            os.link(source, dest, follow_symlinks=False)
            self.files += 1
            return
        else:
            self.skipped += 1  # devices, FIFOs, sparse files: never made
            return
        self._own(dest, info)

    def _file(self, dest: str, member, mode: int) -> None:
        size = member.info.size
        if self.written + size > self.limits.max_bytes:
            raise _Problem(f"makes the root filesystem more than {self.limits.max_bytes} bytes (the limit)")
        fd = os.open(dest, FILE_FLAGS, 0o600)
        try:
            source = member.tar.extractfile(member.info)
            done = 0
            while done < size and (block := source.read(min(CHUNK, size - done))):
                _write_all(fd, block)
                done += len(block)
            if done != size:
                raise _Problem(f"holds {done} bytes, not the {size} its header declares")
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        self.written += size
        self.files += 1

    def _own(self, dest: str, info) -> None:
        if self.as_root:
            try:
                os.chown(dest, info.uid, info.gid, follow_symlinks=False)
            except OSError:
                pass


def _lstat_mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def _write_all(fd: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view):]


def unpack_rootfs(image: PlatformImage, target: Path, limits: RootfsLimits = RootfsLimits()) -> RootfsStats:
    """Apply ``image``'s layers below the empty folder ``target``; LayerError (exit 2) naming the member
    that cannot be unpacked."""
    tree = _Tree(str(target.resolve()), limits)
    keep: set[str] = set()  # what the current layer made (an opaque marker keeps it)
    layer = -1
    for member in layer_members(image, limits.layers):
        if member.layer != layer:
            layer, keep = member.layer, set()
        try:
            tree.add(member, keep)
        except LayerError:
            raise
        except (_Problem, *LAYER_ERRORS) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise LayerError(f"{member.where}: member '{excerpt(member.info.name, 80)}' {excerpt(why, 160)}") from None
    return RootfsStats(tree.files, tree.written, tree.skipped)


@contextmanager
def rootfs_folder(cache_dir: Path) -> Iterator[Path]:
    """A new, locked folder ``<cache>/rootfs/pkgc-unpack-*``; yields its ``root`` subfolder (empty) and
    removes the whole folder afterwards, whatever happens. Leftovers of killed runs go first."""
    parent = cache_dir / "rootfs"
    parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(parent)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    fd = None
    try:
        fd = os.open(folder / LOCK_INIT, OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(folder / LOCK_INIT, folder / LOCK)
        root = folder / "root"
        root.mkdir(mode=0o755)
        yield root
    finally:
        _remove_tree(folder)
        if fd is not None:
            os.close(fd)


def _remove_tree(folder: Path) -> None:
    """Remove ``folder`` (no link followed); a folder the image made unwritable is made writable first."""
    def unlock(function, path, _exc) -> None:
        try:
            os.chmod(os.path.dirname(path), 0o700, follow_symlinks=False)
            function(path)
        except OSError:
            pass  # gone already, or not ours to remove: the next run's leftover sweep tries again

    shutil.rmtree(folder, onerror=unlock)


def inside(root: Path, path: str) -> Path:
    """The host path of ``path`` (absolute in the image) with every link resolved inside ``root``."""
    tree = _Tree(str(root), RootfsLimits())
    try:
        return Path(tree.at(tree.real(path.split("/"))))
    except _Problem as exc:
        raise LayerError(f"{excerpt(path, 80)} in the root filesystem {exc}") from None


def make_folder(root: Path, path: str) -> Path:
    """The folder ``path`` of the image made (links resolved inside ``root``, a file in the way replaced)."""
    tree = _Tree(str(root), RootfsLimits())
    try:
        real = tree.real(path.split("/"))
    except _Problem as exc:
        raise LayerError(f"{excerpt(path, 80)} in the root filesystem {exc}") from None
    tree.folders(real)
    return Path(tree.at(real))


def read_file(root: Path, path: str, limit: int) -> bytes | None:
    """The regular file ``path`` of the unpacked image (None: no such regular file); LayerError when it
    is larger than ``limit``."""
    from compiler.oci.regular import NotRegularFile, open_regular

    try:
        fd, size = open_regular(inside(root, path))
    except (OSError, NotRegularFile):
        return None
    with os.fdopen(fd, "rb") as fh:
        if size > limit:
            raise LayerError(f"{excerpt(path, 80)} in the image is larger than {limit} bytes")
        return fh.read(size)
