"""A content-addressed blob store (``blobs/sha256/<hex>``, the layout of an OCI image layout).

Blobs are written once: a writer streams into a temporary file (``.partial-*``) while hashing and
renames it into place only if no blob of that digest exists yet, so concurrent builds never see half
a blob; a write that fails for any reason (bad input, a full disk) removes its temporary file."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from compiler.cache.owner import staging_name
from compiler.oci.regular import open_regular

CHUNK = 1 << 20
PARTIAL = ".partial-"  # a blob being written: .partial-<pid>.<start time>-<random> (compiler.cache.owner)
STALE = 3600  # seconds a partial blob of a vanished process stays before a later write removes it
DAY = 86400
READ_LIMIT = 64 << 20  # a blob read whole (a manifest, a config, an SBOM)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Blob:
    digest: str  # sha256:<hex>
    size: int


class BlobWriter:
    """A file-like sink: ``write`` bytes, then ``commit()`` returns the stored Blob."""

    def __init__(self, store: "BlobStore"):
        self._store = store
        store.root.mkdir(parents=True, exist_ok=True)
        store.sweep_partials()
        fd, name = tempfile.mkstemp(prefix=staging_name(PARTIAL), dir=store.root)  # .partial-<pid>.<start>-: swept by a later run
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        return len(data)

    def copy_from(self, reader) -> int:
        """Append what ``reader`` (a ``compiler.workspace.walk.ExactReader``) has left, copied in the
        kernel, then hashed from this blob's own file: the digest is that of the bytes stored.
        Returns the number of bytes appended."""
        self._file.flush()
        fd = self._file.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        reader.copy_to(fd)
        end = os.lseek(fd, 0, os.SEEK_END)
        self._file.seek(end)
        position = start
        while position < end:
            block = os.pread(fd, min(CHUNK, end - position), position)
            if not block:
                raise OSError(f"{self._tmp}: shorter than what was copied into it")
            self._hash.update(block)
            position += len(block)
        self.size += end - start
        return end - start

    def commit(self, expected: str | None = None) -> Blob:
        """Store the bytes written; with ``expected``, only if that is their digest (ValueError else).
        Whatever fails, nothing is stored and the temporary file is gone."""
        try:
            self._file.close()
            digest = "sha256:" + self._hash.hexdigest()
            if expected is not None and digest != expected:
                raise ValueError(f"blob {expected} has the digest {digest}")
            target = self._store.path(digest)
            if target.exists():
                self._tmp.unlink()
            else:
                os.chmod(self._tmp, 0o444)
                os.replace(self._tmp, target)
        except BaseException:
            self.abort()
            raise
        return Blob(digest, self.size)

    def abort(self) -> None:
        """Drop what was written (the temporary file is removed even when closing it fails)."""
        try:
            self._file.close()
        except OSError:
            pass
        self._tmp.unlink(missing_ok=True)


class BlobStore:
    """``root`` is the ``blobs/sha256`` folder."""

    def __init__(self, root: Path):
        self.root = root
        self._swept = False

    def sweep_partials(self) -> list[str]:
        """Remove the ``.partial-<pid>-*`` files killed writers left (once per store object, before
        its first write): those not written for ``STALE`` seconds whose process is gone, and any not
        written for a day. A live writer's file is written every few seconds, so it is never one."""
        if self._swept:
            return []
        self._swept, removed, now = True, [], time.time()
        try:
            candidates = [entry for entry in os.scandir(self.root) if entry.name.startswith(PARTIAL)]
        except OSError:
            return []
        for entry in candidates:
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if age > DAY or (age > STALE and not _alive(entry.name)):
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except OSError:
                continue  # another run removed or renamed it
        return removed

    def path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def put(self, data: bytes) -> Blob:
        writer = self.writer()
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def import_stream(self, stream: Readable, digest: str | None = None) -> Blob:
        """Store what ``stream`` gives until its end; with ``digest``, only if that is its digest
        (ValueError else) and not at all when that blob is already held. Whatever fails (the stream
        raising, a full disk), no partial file stays behind."""
        if digest is not None and self.has(digest):
            return Blob(digest, self.path(digest).stat().st_size)
        writer = self.writer()
        try:
            while block := stream.read(CHUNK):
                writer.write(block)
        except BaseException:
            writer.abort()
            raise
        return writer.commit(expected=digest)

    def import_file(self, path: Path, digest: str) -> Blob:
        """Copy the regular file at ``path`` (no link followed, no FIFO or device opened; NotRegularFile,
        a ValueError, else) in as the blob ``digest``, reading at most the size it had when opened;
        checked while copying (ValueError when its bytes have another digest)."""
        if self.has(digest):
            return Blob(digest, self.path(digest).stat().st_size)
        fd, size = open_regular(path)
        with os.fdopen(fd, "rb") as fh:
            return self.import_stream(_Bounded(fh, size), digest)

    def read(self, digest: str, limit: int = READ_LIMIT) -> bytes:
        """The whole blob, checked against its digest (ValueError when it is corrupt or larger than
        ``limit``; a link or special file in the store is refused like one in an input)."""
        fd, size = open_regular(self.path(digest))
        with os.fdopen(fd, "rb") as fh:
            if size > limit:
                raise ValueError(f"blob {digest} in {self.root} is {size} bytes, more than the {limit} read whole")
            data = fh.read(size)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"blob {digest} in {self.root} is corrupt")
        return data


class _Bounded:
    """At most ``left`` bytes of ``fh``."""

    def __init__(self, fh, left: int):
        self._fh, self._left = fh, left

    def read(self, size: int = -1) -> bytes:
        block = self._fh.read(self._left if size < 0 else min(size, self._left)) if self._left > 0 else b""
        self._left -= len(block)
        return block


def _alive(name: str) -> bool:
    """Whether the process that named ``.partial-<pid>-*`` still runs (True when it cannot be told)."""
    pid = name[len(PARTIAL) :].partition("-")[0].partition(".")[0]  # .partial-<pid>[.<start>]-...
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
