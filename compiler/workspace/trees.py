"""Content-addressed, immutable file trees (model versions) and blobs (conda files, locks).

Trees are read through ``compiler.workspace.walk``: regular files and folders only, links inside the
tree stored as what they point to (see that module for the policy). A tree is placed in a staging
folder, each file a hard link to its content file (``files/<sha256>``, held once for all trees), and
renamed into place; a staging folder whose writer is gone (killed) is removed by the next
``store_tree``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from compiler.workspace.digest_cache import MIN_SIZE, DigestCache, same_state
from compiler.workspace.walk import ContentError, Entry, open_exact, shown, walk

CHUNK = 1 << 20
STAGING = ".staging-"  # trees/.staging-<id>/ is being written by whoever holds trees/.staging-<id>.lock
LOCK_SUFFIX = ".lock"
LOCK_INIT = ".lockinit-"  # a lock file before it is named: created, locked, then renamed
LOCK_INIT_GRACE = 60.0  # seconds an unlocked, unnamed lock file may be in the making


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def _root_name(source: Path) -> str:
    if source.name in ("", ".", ".."):
        raise ContentError(f"{shown(source)}: name the file or folder itself (its name is part of the model)")
    return source.name


def _digest_line(rel: str, executable: bool, content_sha256: str) -> bytes:
    return os.fsencode(rel) + f"\0{int(executable)}\0{content_sha256}\n".encode()


def _rel(root_name: str, entry: Entry) -> str:
    return f"{root_name}/{entry.rel}" if entry.rel else root_name


def _hash_content(entry: Entry, out: Path | None = None) -> str:
    """sha256 of a regular file read exactly once; copied to ``out`` when given (in the kernel, then
    the copy is hashed: the digest is always that of the bytes stored)."""
    with open_exact(entry.path) as reader:
        if out is None:
            digest = hashlib.sha256()
            while block := reader.read(CHUNK):
                digest.update(block)
            return digest.hexdigest()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            reader.copy_to(fd)
        finally:
            os.close(fd)
    return file_sha256(out)


def _content_digest(entry: Entry, digests: DigestCache | None, out: Path | None = None) -> str:
    """``_hash_content``, remembering the digest of a file that held still while it was read."""
    if digests is None:
        return _hash_content(entry, out)
    before, started = os.stat(entry.path), time.time()
    sha256 = _hash_content(entry, out)
    after = os.stat(entry.path)
    if same_state(before, after):
        digests.remember(after, sha256, started)
    return sha256


def stored_file_sha256(path: Path, digests: DigestCache | None) -> str:
    """sha256 of a file of a stored (read-only, pkgc-owned) tree: read only when ``digests`` does not know it."""
    st = os.stat(path)
    if digests is not None and (known := digests.lookup(st)) is not None:
        return known
    started = time.time()
    sha256 = file_sha256(path)
    if digests is not None and same_state(st, os.stat(path)):
        digests.remember(st, sha256, started, trusted=True)
    return sha256


def tree_digest(source: Path, digests: DigestCache | None = None) -> str:
    """sha256 over (relative path, executable bit, content hash) of every file, with the root's name;
    a file whose state ``digests`` knows is not read."""
    name = _root_name(source)
    digest = hashlib.sha256()
    for entry in walk(source):
        if not entry.is_dir:
            known = digests.lookup(os.stat(entry.path)) if digests is not None else None
            content = known or _content_digest(entry, digests)
            digest.update(_digest_line(_rel(name, entry), entry.executable, content))
    return digest.hexdigest()


def _known_tree_digest(source: Path, digests: DigestCache | None) -> str | None:
    """The tree digest when no large file needs reading (``digests`` knows each), else None."""
    if digests is None:
        return None
    name = _root_name(source)
    digest = hashlib.sha256()
    for entry in walk(source):
        if entry.is_dir:
            continue
        st = os.stat(entry.path)
        known = digests.lookup(st)
        if known is None and st.st_size >= MIN_SIZE:
            return None
        digest.update(_digest_line(_rel(name, entry), entry.executable, known or _hash_content(entry)))
    return digest.hexdigest()


def _freeze(target: Path, entries: list[Entry]) -> None:
    """Make a stored tree read-only: files 0444 (0555 when executable), folders 0555 (innermost first)."""
    for entry in reversed(entries):
        path = target / entry.rel if entry.rel else target
        path.chmod(0o555 if entry.is_dir or entry.executable else 0o444)


def _remove(path: Path) -> None:
    """Remove a (possibly frozen) staging folder, best effort; with a stack, not recursion (depth is the user's)."""
    if not path.is_dir() or path.is_symlink():
        return
    folders, stack = [], [str(path)]
    while stack:
        folder = stack.pop()
        try:
            os.chmod(folder, 0o755)
            children = list(os.scandir(folder))
        except OSError:
            continue
        folders.append(folder)
        for child in children:
            if child.is_dir(follow_symlinks=False):
                stack.append(child.path)
            else:
                with suppress(OSError):
                    os.unlink(child.path)
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s lock when nobody else holds it (its writer is gone), else None."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:  # gone, or not ours to open: not ours to clean either
        return None
    return lock_if_free(fd)


def lock_if_free(fd: int) -> int | None:
    """``fd`` holding its file's lock when nobody else holds it; else None, the fd closed."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def clean_stale_staging(trees_dir: Path) -> list[str]:
    """Remove staging folders (and their lock files) whose writer is gone; return their names.

    A live writer holds an flock on ``.staging-<id>.lock`` for as long as ``.staging-<id>/`` exists;
    a staging folder without a lock file (left by older pkgc versions) is stale too."""
    removed: list[str] = []
    try:
        paths = sorted(trees_dir.iterdir())
    except OSError:
        return removed
    for path in paths:
        name = path.name
        if name.startswith(LOCK_INIT):
            fd = _try_lock(path)
            if fd is not None:
                if time.time() - os.fstat(fd).st_mtime > LOCK_INIT_GRACE:
                    with suppress(OSError):
                        path.unlink()
                os.close(fd)
            continue
        if not name.startswith(STAGING) or name.endswith(LOCK_SUFFIX):
            continue
        lock = trees_dir / (name + LOCK_SUFFIX)
        fd = _try_lock(lock)
        if fd is None and lock.exists():
            continue  # a live writer holds it
        try:
            _remove(path)
            with suppress(OSError):
                lock.unlink()
            removed.append(name)
        finally:
            if fd is not None:
                os.close(fd)
    for lock in trees_dir.glob(f"{STAGING}*{LOCK_SUFFIX}"):  # a writer killed after its rename
        if not (trees_dir / lock.name[: -len(LOCK_SUFFIX)]).exists():
            fd = _try_lock(lock)
            if fd is not None:
                with suppress(OSError):
                    lock.unlink()
                os.close(fd)
    return removed


@contextmanager
def _staging(trees_dir: Path) -> Iterator[Path]:
    """A new staging folder, locked for as long as the block runs; removed unless renamed away."""
    ident = f"{os.getpid()}-{secrets.token_hex(8)}"
    init = trees_dir / f"{LOCK_INIT}{ident}"
    fd = os.open(init, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lock = trees_dir / f"{STAGING}{ident}{LOCK_SUFFIX}"
        os.rename(init, lock)  # visible only once locked
        staging = trees_dir / f"{STAGING}{ident}"
        staging.mkdir()
        try:
            yield staging
        finally:
            _remove(staging)
            lock.unlink(missing_ok=True)
    finally:
        init.unlink(missing_ok=True)
        os.close(fd)


def _content_name(sha256: str, executable: bool) -> str:
    return sha256 + (".x" if executable else "")


def _link_or_copy(stored: Path, out: Path) -> None:
    """``out`` as another name of the stored content file; a copy where links are not possible."""
    try:
        os.link(stored, out)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP):
            raise
        shutil.copyfile(stored, out)


def _stored_content(entry: Entry, files_dir: Path, staging: Path, digests: DigestCache | None) -> tuple[str, Path]:
    """The content file of ``entry`` in ``files_dir`` (named by its sha256, '.x' when executable),
    written now when missing (first in ``staging``, which a killed run's successor removes); a file
    ``digests`` knows is not read when its content is already held."""
    known = digests.lookup(os.stat(entry.path)) if digests is not None else None
    if known is not None and (held := files_dir / _content_name(known, entry.executable)).is_file():
        return known, held
    tmp = staging / f".content-{secrets.token_hex(16)}"
    try:
        sha256 = _content_digest(entry, digests, tmp)
        tmp.chmod(0o555 if entry.executable else 0o444)
        held = files_dir / _content_name(sha256, entry.executable)
        if not held.is_file():
            os.replace(tmp, held)
    finally:
        tmp.unlink(missing_ok=True)
    if digests is not None:
        digests.remember(os.stat(held), sha256, 0.0, trusted=True)
    return sha256, held


def _copy(source: Path, target: Path, files_dir: Path, digests: DigestCache | None) -> tuple[str, list[Entry]]:
    """Place the walked ``source`` at ``target`` (in a staging folder): each file a hard link to its
    content file in ``files_dir`` (stored once for every tree holding it, read once when new); return
    the digest of what was placed, and its entries."""
    name, staging = target.name, target.parent
    digest = hashlib.sha256()
    entries = walk(source)
    try:
        for entry in entries:
            out = target / entry.rel if entry.rel else target
            if entry.is_dir:
                out.mkdir()
            else:
                content, held = _stored_content(entry, files_dir, staging, digests)
                _link_or_copy(held, out)
                digest.update(_digest_line(_rel(name, entry), entry.executable, content))
    except OSError as exc:  # a path too long for the workspace's folder, a full disk
        raise ContentError(f"{shown(source)}: cannot be stored in the workspace ({exc.strerror})") from None
    return digest.hexdigest(), entries


def store_tree(source: Path, trees_dir: Path, digests: DigestCache | None = None) -> str:
    """Store ``source`` (file or folder) as ``trees_dir/<digest>/<source name>``; return the digest.

    File contents are held once in ``trees_dir/../files`` and linked into every tree that has them:
    a new model version that keeps a weight file costs no copy of it. Each new file is read once,
    hashed as it is stored; with ``digests``, a file whose state is known is not read at all."""
    known = _known_tree_digest(source, digests)
    if known is not None and (trees_dir / known).exists():
        return known
    files_dir = trees_dir.parent / "files"
    for folder in (trees_dir, files_dir):
        folder.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(trees_dir)
    with _staging(trees_dir) as staging:
        root = staging / source.name
        digest, entries = _copy(source, root, files_dir, digests)
        final = trees_dir / digest
        if final.exists():
            return digest
        _freeze(root, entries)
        staging.chmod(0o555)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.exists():
                raise
    return digest


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` all at once: a new file (mode 0666 less the umask, like any new file) renamed into place."""
    tmp = path.parent / f"{STAGING}{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def store_blob(data: bytes, blobs_dir: Path) -> str:
    digest = hashlib.sha256(data).hexdigest()
    final = blobs_dir / digest
    if not final.exists():
        blobs_dir.mkdir(parents=True, exist_ok=True)
        write_file_atomic(final, data)
    return digest
