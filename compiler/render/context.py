"""Write the build context as a normalised tar: sorted entries, fixed owner and mtime, fixed modes.

The same inputs give the same bytes, so the engine's layer cache and the image digests are stable.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from compiler.plan.types import ContextFile

IGNORED = {"__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store"}


def _info(name: str, size: int, mode: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = size, mode, kind
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _walk(source: Path, dest: str) -> list[tuple[str, Path]]:
    """(archive name, file) for ``source`` (file or folder), sorted, ignoring caches."""
    if source.is_file():
        return [(dest, source)]
    entries = [(dest, source)]
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED)
        rel = Path(dirpath).relative_to(source)
        for d in dirnames:
            entries.append(((Path(dest) / rel / d).as_posix(), Path(dirpath) / d))
        for f in sorted(filenames):
            if f in IGNORED or f.endswith(".pyc"):
                continue
            path = Path(dirpath) / f
            if path.is_symlink():
                raise ValueError(f"{path}: symbolic links are not copied into packages")
            entries.append(((Path(dest) / rel / f).as_posix(), path))
    return entries


def write_context(dockerfile: str, files: tuple[ContextFile, ...], out: BinaryIO) -> None:
    """Write Dockerfile + ``files`` as a tar to ``out`` (a file opened for binary writing)."""
    members: dict[str, tuple[Path | None, bytes | None, bool]] = {"Dockerfile": (None, dockerfile.encode(), False)}
    for item in files:
        if item.data is not None:
            members[item.dest] = (None, item.data, item.executable)
            continue
        assert item.source is not None
        for name, path in _walk(item.source, item.dest):
            members[name] = (path, None, item.executable)
    directories: set[str] = set()
    for name in members:
        parts = name.split("/")[:-1]
        directories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(directories | set(members)):
            path, data, executable = members.get(name, (None, None, False))
            if path is not None and path.is_dir() or (path is None and data is None):
                tar.addfile(_info(name, 0, 0o755, tarfile.DIRTYPE))
            elif data is not None:
                tar.addfile(_info(name, len(data), 0o755 if executable else 0o644), io.BytesIO(data))
            else:
                exec_bit = executable or bool(path.stat().st_mode & stat.S_IXUSR)
                with open(path, "rb") as fh:
                    tar.addfile(_info(name, path.stat().st_size, 0o755 if exec_bit else 0o644), fh)
