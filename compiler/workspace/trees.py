"""Content-addressed, immutable file trees (model versions) and blobs (conda files, locks)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def iter_files(root: Path) -> list[Path]:
    """Every regular file below ``root`` (or ``root`` itself), sorted, links refused."""
    if root.is_file():
        return [root]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                raise ValueError(f"symbolic link {path} cannot be part of a model")
            files.append(path)
    return files


def tree_digest(source: Path) -> str:
    """sha256 over (relative path, executable bit, content hash) of every file, with the root's name."""
    digest = hashlib.sha256()
    base = source.parent
    for path in iter_files(source):
        rel = path.relative_to(base).as_posix()
        executable = bool(path.stat().st_mode & stat.S_IXUSR)
        digest.update(f"{rel}\0{int(executable)}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _freeze(root: Path) -> None:
    """Make a stored tree read-only: files 0444 (0555 when executable), folders 0555."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            path.chmod(0o555 if path.stat().st_mode & stat.S_IXUSR else 0o444)
        Path(dirpath).chmod(0o555)


def store_tree(source: Path, trees_dir: Path) -> str:
    """Copy ``source`` (file or folder) into ``trees_dir/<digest>/<source name>``; return the digest."""
    digest = tree_digest(source)
    final = trees_dir / digest
    if final.exists():
        return digest
    trees_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=trees_dir))
    try:
        target = staging / source.name
        if source.is_file():
            shutil.copy2(source, target)
        else:
            shutil.copytree(source, target, symlinks=False)
        if tree_digest(target) != digest:
            raise ValueError(f"{source} changed while it was being stored")
        _freeze(staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.exists():
                raise
    finally:
        if staging.exists():
            staging.chmod(0o755)
            shutil.rmtree(staging, ignore_errors=True)
    return digest


def store_blob(data: bytes, blobs_dir: Path) -> str:
    digest = hashlib.sha256(data).hexdigest()
    final = blobs_dir / digest
    if not final.exists():
        blobs_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".staging-", dir=blobs_dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, final)
    return digest
