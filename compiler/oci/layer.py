"""Normalised layer tars: sorted entries, parents included, fixed mtime, owner and modes, no xattrs.

A layer is written once into the blob store, gzip-compressed (``compress.py``) or stored as a plain
tar (model weights, where compression buys nothing); its diff_id (the tar's sha256) is computed on
the way, so a layer is read from disk exactly once."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from compiler.oci.blobs import BlobStore
from compiler.oci.compress import compressor

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"
IGNORED = {"__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store"}  # as the Docker context skips


@dataclass(frozen=True)
class Entry:
    """One file system entry of a layer, at ``path`` in the image (no leading '/')."""

    path: str
    kind: Literal["file", "dir", "symlink"]
    mode: int = 0o644
    source: Path | None = None  # file content from the host
    data: bytes | None = None  # or given
    target: str = ""  # symlink target
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class LayerBlob:
    """A written layer: its blob digest and size, its diff_id and media type."""

    digest: str
    size: int
    diff_id: str
    media_type: str

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def folder_entries(source: Path, dest: str, *, symlinks: bool = False, uid: int = 0, gid: int = 0) -> list[Entry]:
    """Entries for the file or folder ``source`` placed at ``dest``; caches and .pyc files are skipped.

    Symbolic links are kept (``symlinks``) or refused: a package never follows a link off its tree."""
    dest = dest.strip("/")
    if source.is_symlink() and not symlinks:
        raise ValueError(f"{source}: symbolic links are not copied into packages")
    if not source.is_dir():
        return [_file_entry(source, dest, uid, gid, symlinks)]
    entries = [Entry(dest, "dir", 0o755, uid=uid, gid=gid)]
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        kept = []
        for d in sorted(dirnames):
            path = Path(dirpath) / d
            if d in IGNORED and not symlinks:
                continue
            if path.is_symlink():
                entries.append(_file_entry(path, _join(dest, rel, d), uid, gid, symlinks))
                continue
            kept.append(d)
            entries.append(Entry(_join(dest, rel, d), "dir", 0o755, uid=uid, gid=gid))
        dirnames[:] = kept
        for f in sorted(filenames):
            if not symlinks and (f in IGNORED or f.endswith(".pyc")):
                continue
            entries.append(_file_entry(Path(dirpath) / f, _join(dest, rel, f), uid, gid, symlinks))
    return entries


def _join(dest: str, rel: Path, name: str) -> str:
    return (Path(dest) / rel / name).as_posix()


def _file_entry(path: Path, dest: str, uid: int, gid: int, symlinks: bool) -> Entry:
    if path.is_symlink():
        if not symlinks:
            raise ValueError(f"{path}: symbolic links are not copied into packages")
        return Entry(dest, "symlink", 0o777, target=os.readlink(path), uid=uid, gid=gid)
    executable = bool(path.stat().st_mode & 0o100)
    return Entry(dest, "file", 0o755 if executable else 0o644, source=path, uid=uid, gid=gid)


def normalise(entries: Iterable[Entry]) -> list[Entry]:
    """Sorted by path, every parent folder present (root-owned, 0755), one entry per path."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = entry.path.strip("/")
        if not path or ".." in path.split("/"):
            raise ValueError(f"layer entry outside the image root: {entry.path!r}")
        by_path[path] = entry if entry.path == path else Entry(**{**entry.__dict__, "path": path})
    for path in list(by_path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            by_path.setdefault("/".join(parts[:i]), Entry("/".join(parts[:i]), "dir", 0o755))
    return [by_path[p] for p in sorted(by_path)]


class _Sink:
    """Receives the tar stream: hashes it (diff_id), compresses it (or not) into a blob writer."""

    def __init__(self, writer, compress: bool):
        self.writer, self.diff = writer, hashlib.sha256()
        self.compressor = compressor() if compress else None

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self.writer.write(self.compressor.compress(data) if self.compressor else data)
        return len(data)

    def finish(self) -> None:
        if self.compressor:
            self.writer.write(self.compressor.flush())


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = entry.mode, entry.uid, entry.gid, "", "", mtime
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.target
    else:
        info.size = len(entry.data) if entry.data is not None else entry.source.stat().st_size  # type: ignore[union-attr]
    return info


def write_layer(entries: Iterable[Entry], store: BlobStore, mtime: int = 0, compress: bool = True) -> LayerBlob:
    """Write ``entries`` as one normalised layer into ``store``."""
    writer = store.writer()
    sink = _Sink(writer, compress)
    try:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for entry in normalise(entries):
                info = _tarinfo(entry, mtime)
                if entry.kind != "file":
                    tar.addfile(info)
                elif entry.data is not None:
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    with open(entry.source, "rb") as fh:  # type: ignore[arg-type]
                        tar.addfile(info, fh)
        sink.finish()
    except BaseException:
        writer.abort()
        raise
    blob = writer.commit()
    return LayerBlob(blob.digest, blob.size, "sha256:" + sink.diff.hexdigest(), GZIP_LAYER if compress else TAR_LAYER)
