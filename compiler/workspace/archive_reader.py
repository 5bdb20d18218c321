"""Reads a tar archive as a stream of member headers, with every read bounded.

tarfile's own stream mode (``r|*``) hands each compressed block to the decompressor whole: a
276-byte ``.tar.bz2`` of zeros makes it hold 800 MB before the first header is seen. Here the file is
decompressed by ``gzip`` / ``bz2`` / ``lzma`` file objects, which never return more than was asked
for, and tarfile only parses the plain stream (``r|``), so the archive is read once, in order.
tarfile also reads a pax header, a GNU long name or a sparse map into memory whole, and keeps every
header it read: those are bounded or dropped.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

MAX_HEADER_BYTES = 64 * 1024  # one pax extended header or GNU long name/link
EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
            tarfile.SOLARIS_XHDTYPE)  # fmt: skip
SPARSE = "is a sparse file (only files, folders and links inside the tree)"


class Unreadable(Exception):
    """The archive's bytes cannot be read: bad or truncated compression, a broken header."""


class Oversized(Exception):
    """A header pkgc does not read: an extended header above the bound, a sparse file's map."""


class _BoundedTarInfo(tarfile.TarInfo):
    def _proc_member(self, tarfile_):
        if self.type in EXTENDED and self.size > MAX_HEADER_BYTES:
            raise Oversized(f"has an extended header of {self.size} bytes (more than {MAX_HEADER_BYTES})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise Oversized(SPARSE)
        return super()._proc_member(tarfile_)

    def _proc_gnusparse_10(self, next_, pax_headers, tarfile_):  # its map is read from the data, unbounded
        raise Oversized(SPARSE)


class _Guarded:
    """A decompressed stream whose read errors (any codec's) become Unreadable."""

    def __init__(self, source: BinaryIO):
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise Unreadable("an unbounded read")  # tarfile's stream mode always asks for a size
        try:
            return self._source.read(size)
        except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
            raise Unreadable(str(exc) or type(exc).__name__) from None


def _decompressed(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    return raw


@contextmanager
def tar_stream(archive: Path) -> Iterator[tarfile.TarFile]:
    """``archive`` (plain, gzip, bzip2 or xz) open as a tar stream: members in order, each read once."""
    with open(archive, "rb") as raw, _decompressed(raw) as plain:
        try:
            tar = tarfile.open(fileobj=_Guarded(plain), mode="r|", tarinfo=_BoundedTarInfo)
        except tarfile.TarError as exc:
            raise Unreadable(str(exc) or type(exc).__name__) from None
        with tar:
            yield tar


def members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar`` in order; tarfile's list of every header read so far is emptied as it goes."""
    while True:
        try:
            member = tar.next()
        except (tarfile.TarError, RecursionError) as exc:  # a broken header; a chain of extended headers
            raise Unreadable(str(exc) or type(exc).__name__) from None
        if member is None:
            return
        del tar.members[:]
        yield member
