"""Normalised layer tars: sorted entries, parents included, fixed mtime, owner and modes, no xattrs.

A layer is written once into the blob store, compressed as the build asks (``compress.py``: gzip,
zstd) or stored as a plain tar (also model weights, where compression buys nothing: there each large
file's data starts at a filesystem block, so it can share the source's extents); its diff_id (the
tar's sha256) is computed on the way, so a layer is read from disk exactly once."""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from compiler.oci.aligned_header import aligned_header, header
from compiler.oci.blobs import BlobStore, BlobWriter
from compiler.oci.compress import GZIP_LAYER, MEDIA_TYPES, TAR_LAYER, ZSTD_LAYER, Compression, compressor
from compiler.workspace.walk import open_exact

BLOCK = 1 << 20  # what a compressed layer's sink hashes and compresses at a time
__all__ = ["GZIP_LAYER", "TAR_LAYER", "ZSTD_LAYER", "Entry", "LayerBlob", "normalise", "staging_entries", "write_layer"]


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


def staging_entries(source: Path, dest: str) -> list[Entry]:
    """Entries for a folder pkgc assembled itself (the venv staging), placed at ``dest``: everything
    in it, links kept as links. User content (model, code) goes through ``compiler.workspace.walk``."""
    dest = dest.strip("/")
    entries = [Entry(dest, "dir", 0o755)]
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        for name in sorted(dirnames) + sorted(filenames):
            path = Path(dirpath) / name
            target = (Path(dest) / rel / name).as_posix()
            if path.is_symlink():
                entries.append(Entry(target, "symlink", 0o777, target=os.readlink(path)))
            elif path.is_dir():
                entries.append(Entry(target, "dir", 0o755))
            else:
                entries.append(Entry(target, "file", 0o755 if path.stat().st_mode & 0o100 else 0o644, source=path))
    return entries


def normalise(entries: Iterable[Entry]) -> list[Entry]:
    """Sorted by path, every parent folder present (root-owned, 0755), one entry per path."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = entry.path.strip("/")
        if not path or ".." in path.split("/"):
            raise ValueError(f"layer entry outside the image root: {entry.path!r}")
        by_path[path] = entry if entry.path == path else Entry(**{**entry.__dict__, "path": path})
    complete: set[str] = set()  # folders whose parents are all present
    for path in list(by_path):
        parent = path.rpartition("/")[0]
        missing = []
        while parent and parent not in complete:
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        for folder in missing:
            if folder not in by_path:
                by_path[folder] = Entry(folder, "dir", 0o755)
        complete.update(missing)
    return [by_path[p] for p in sorted(by_path)]


class _Sink:
    """Receives a compressed layer's tar stream: hashes it (the diff_id) and compresses it into a blob
    writer, in blocks of at least ``BLOCK`` bytes. A tar's 512-byte headers and small files are
    gathered first: in a layer of tens of thousands of files the cost per write, not per byte, was
    what the main thread spent its time on."""

    def __init__(self, writer: BlobWriter, compression: Compression):
        self.writer = writer
        self.diff = hashlib.sha256()
        self.compressor = compressor(compression)
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        if not self._pending and len(data) >= BLOCK:
            self._put(data)
        else:
            self._pending += data
            if len(self._pending) >= BLOCK:
                self._put(bytes(self._pending))
                self._pending.clear()
        return len(data)

    def copy_from(self, reader) -> int:
        """Append what ``reader`` (a ``compiler.workspace.walk.ExactReader``) has left, read in blocks."""
        copied = 0
        while block := reader.read(BLOCK):
            copied += self.write(block)
        return copied

    def _put(self, data: bytes) -> None:
        self.diff.update(data)
        self.writer.write(self.compressor.compress(data))

    def finish(self) -> None:
        if self._pending:
            self._put(bytes(self._pending))
            self._pending.clear()
        self.writer.write(self.compressor.flush())

    def close(self) -> None:
        self.compressor.close()


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = entry.mode, entry.uid, entry.gid, "", "", mtime
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.target
    elif entry.data is not None:
        info.size = len(entry.data)
    return info


def _write_tar(entries: list[Entry], writer: BlobWriter | _Sink, mtime: int, aligned: bool = False) -> None:
    """The tar Python's ``tarfile`` writes for ``entries`` (``w|``, PAX format), byte for byte: PAX
    headers, 512-byte blocks, two zero blocks and 10240-byte records at the end; ``aligned`` (a plain
    layer) pads the header of each large host file so its data starts at a block boundary
    (``compiler.oci.aligned_header``). File contents go through ``writer.copy_from``: in the kernel
    into a plain layer's blob (sharing extents where the filesystem can), in 1 MiB blocks into a
    compressed one's sink."""
    offset = 0

    def put(data: bytes) -> None:
        nonlocal offset
        offset += writer.write(data)

    for entry in entries:
        info = _tarinfo(entry, mtime)
        if entry.kind == "file" and entry.data is None:
            with open_exact(entry.source) as reader:  # type: ignore[arg-type]
                info.size = reader.size
                put(aligned_header(info, offset) if aligned else header(info))
                offset += writer.copy_from(reader)
        else:
            put(header(info))
            if entry.kind == "file":
                put(entry.data or b"")
        put(tarfile.NUL * (-offset % tarfile.BLOCKSIZE))
    put(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
    put(tarfile.NUL * (-offset % tarfile.RECORDSIZE))


def write_layer(
    entries: Iterable[Entry], store: BlobStore, mtime: int = 0, compress: bool = True, compression: Compression = "gzip"
) -> LayerBlob:
    """Write ``entries`` as one normalised layer into ``store``, compressed by ``compression``
    (``compress=False``: a plain tar whatever ``compression`` says, as for model weights)."""
    compression = compression if compress else "none"
    writer = store.writer()
    sink = _Sink(writer, compression) if compression != "none" else None  # a plain tar's diff_id is its blob digest
    try:
        _write_tar(normalise(entries), sink or writer, mtime, aligned=sink is None)
        if sink is not None:
            sink.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        if sink is not None:
            sink.close()
    blob = writer.commit()
    diff_id = "sha256:" + sink.diff.hexdigest() if sink is not None else blob.digest
    return LayerBlob(blob.digest, blob.size, diff_id, MEDIA_TYPES[compression])
