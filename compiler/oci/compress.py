"""Deterministic gzip for layers, with ISA-L's igzip (python-isal, pinned in pyproject).

Why igzip rather than zlib-ng: measured on the sklearn example's 333 MB environment tar, igzip
level 2 takes 0.56 s for 112.6 MB, zlib-ng level 1 1.0 s for 131.8 MB, zlib level 6 7.7 s for
98.8 MB. Its gzip header is fixed (mtime 0, no file name). igzip's output depends on how the input
is split into calls, so ``ChunkedCompressor`` feeds it fixed 1 MiB blocks: equal tars give equal
blobs for one pinned version. ISA-L picks its kernels by CPU; reports put the only split in its
byte output at SSE4.2, which every x86-64 machine pkgc targets has."""

from __future__ import annotations

from isal import isal_zlib

LEVEL = 2  # igzip levels are 0-3; 2 costs the same time as 1 here and is 2 % smaller
BLOCK = 1 << 20
GZIP_WBITS = 31  # a gzip container (header mtime 0, no name), 32 KiB window


class ChunkedCompressor:
    """One gzip member; input is handed to igzip in fixed blocks whatever the caller's write sizes."""

    def __init__(self) -> None:
        self._deflate = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, GZIP_WBITS)
        self._pending = bytearray()

    def compress(self, data: bytes) -> bytes:
        self._pending += data
        if len(self._pending) < BLOCK:
            return b""
        out = []
        whole = len(self._pending) - len(self._pending) % BLOCK
        view = memoryview(self._pending)
        for start in range(0, whole, BLOCK):
            out.append(self._deflate.compress(view[start : start + BLOCK]))
        view.release()
        del self._pending[:whole]
        return b"".join(out)

    def flush(self) -> bytes:
        tail = self._deflate.compress(bytes(self._pending)) if self._pending else b""
        self._pending.clear()
        return tail + self._deflate.flush()


def compressor() -> ChunkedCompressor:
    return ChunkedCompressor()


def decompressor():
    """A streaming gzip decompressor (for reading base-image layers)."""
    return isal_zlib.decompressobj(GZIP_WBITS)
