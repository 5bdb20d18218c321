"""Write the build context as a normalised tar: sorted entries, fixed owner and mtime, fixed modes.

The same inputs give the same bytes, so the engine's layer cache and the image digests are stable.
Folders are read through ``compiler.workspace.walk`` (regular files and folders only; links inside a
tree become what they point to); names inside them travel as tar entries, byte for byte.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from compiler.plan.types import ContextFile
from compiler.workspace.walk import open_exact, skip_caches, walk


@dataclass(frozen=True)
class _Member:
    path: Path | None = None  # a regular file to read
    data: bytes | None = None  # or bytes given by the plan
    executable: bool = False  # neither: a folder


def _info(name: str, size: int, mode: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = size, mode, kind
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _members(files: tuple[ContextFile, ...]) -> dict[str, _Member]:
    members: dict[str, _Member] = {}
    for item in files:
        if item.data is not None:
            members[item.dest] = _Member(data=item.data, executable=item.executable)
            continue
        assert item.source is not None
        for entry in walk(item.source, ignore=skip_caches):
            name = f"{item.dest}/{entry.rel}" if entry.rel else item.dest
            members[name] = _Member() if entry.is_dir else _Member(entry.path, None, item.executable or entry.executable)
    return members


def write_context(dockerfile: str, files: tuple[ContextFile, ...], out: BinaryIO) -> None:
    """Write Dockerfile + ``files`` as a tar to ``out`` (a file opened for binary writing)."""
    members = {"Dockerfile": _Member(data=dockerfile.encode())} | _members(files)
    directories: set[str] = set()
    for name in members:
        parts = name.split("/")[:-1]
        directories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(directories | set(members)):
            member = members.get(name, _Member())
            mode = 0o755 if member.executable else 0o644
            if member.data is not None:
                tar.addfile(_info(name, len(member.data), mode), io.BytesIO(member.data))
            elif member.path is not None:
                with open_exact(member.path) as reader:
                    tar.addfile(_info(name, reader.size, mode), reader)
            else:
                tar.addfile(_info(name, 0, 0o755, tarfile.DIRTYPE))
