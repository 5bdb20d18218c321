"""A content-addressed blob store (``blobs/sha256/<hex>``, the layout of an OCI image layout).

Blobs are written once: a writer streams into a temporary file while hashing and renames it into
place only if no blob of that digest exists yet, so concurrent builds never see half a blob."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compiler.cache.owner import staging_name


@dataclass(frozen=True)
class Blob:
    digest: str  # sha256:<hex>
    size: int


class BlobWriter:
    """A file-like sink: ``write`` bytes, then ``commit()`` returns the stored Blob."""

    def __init__(self, store: "BlobStore"):
        self._store = store
        store.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=staging_name(".partial-"), dir=store.root)  # a killed run's: swept by the next
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        return len(data)

    def commit(self, expected: str | None = None) -> Blob:
        """Store the bytes written; with ``expected``, only if that is their digest (ValueError else,
        and nothing is stored)."""
        try:
            self._file.close()
        except OSError:  # the last bytes did not fit (a full disk): nothing stays
            self._tmp.unlink(missing_ok=True)
            raise
        digest = "sha256:" + self._hash.hexdigest()
        if expected is not None and digest != expected:
            self._tmp.unlink(missing_ok=True)
            raise ValueError(f"blob {expected} has the digest {digest}")
        target = self._store.path(digest)
        if target.exists():
            self._tmp.unlink()
        else:
            os.chmod(self._tmp, 0o444)
            os.replace(self._tmp, target)
        return Blob(digest, self.size)

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:  # flushing what was buffered failed (a full disk): the file goes anyway
            pass
        self._tmp.unlink(missing_ok=True)


class BlobStore:
    """``root`` is the ``blobs/sha256`` folder."""

    def __init__(self, root: Path):
        self.root = root

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
        writer.write(data)
        return writer.commit()

    def import_file(self, path: Path, digest: str) -> Blob:
        """Copy the file at ``path`` in as the blob ``digest`` (checked while copying; ValueError when
        its bytes have another digest); a blob already held is not copied again."""
        if self.has(digest):
            return Blob(digest, self.path(digest).stat().st_size)
        writer = self.writer()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                writer.write(block)
        return writer.commit(expected=digest)

    def read(self, digest: str) -> bytes:
        data = self.path(digest).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"blob {digest} in {self.root} is corrupt")
        return data
