"""Tar headers that put a file's data at a filesystem-block boundary of a plain layer blob.

A plain (uncompressed) layer is the tar itself, so a file's bytes sit in the blob at the offset where
its header ends. When that offset is a multiple of the filesystem block (``ALIGN``), the kernel's
``copy_file_range``, which writes every large file into a blob (``compiler.workspace.walk``), shares
the source file's extents instead of copying them on filesystems that can (XFS with reflink, btrfs,
bcachefs): a 10 GB model costs the store no second 10 GB. Elsewhere (ext4) it copies, as before.

The padding is a POSIX ``comment`` record in the file's PAX extended header, which every tar reader
(Go's archive/tar in Docker and containerd, GNU tar, Python's tarfile) ignores; the entry itself is
unchanged. Only files of at least ``ALIGN_MIN`` bytes are aligned: for smaller ones the up to 4.5 KiB
of header would cost more than sharing saves. Pure: no I/O."""

from __future__ import annotations

import tarfile

ALIGN = 4096  # the block size of XFS, btrfs and ext4 by default; also a multiple of smaller ones
ALIGN_MIN = 1 << 20
LAYOUT = f"data-aligned-{ALIGN}-from-{ALIGN_MIN}"  # part of every cache key of a plain layer: the bytes follow it
_NOTE = f"pkgc: pads this header so the file's data starts at a {ALIGN}-byte boundary"
_KEY = "comment"


def header(info: tarfile.TarInfo) -> bytes:
    """``info``'s header as pkgc writes every entry: PAX format, UTF-8."""
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def aligned_header(info: tarfile.TarInfo, offset: int) -> bytes:
    """The header of the regular file ``info`` written at ``offset`` in the tar (a multiple of 512),
    padded when the file is at least ``ALIGN_MIN`` bytes so that its data, right after the header,
    starts at a multiple of ``ALIGN``. ``info`` is left as it was given."""
    plain = header(info)
    if info.size < ALIGN_MIN or (offset + len(plain)) % ALIGN == 0:
        return plain
    if offset % tarfile.BLOCKSIZE:
        raise ValueError(f"a tar header cannot start at offset {offset}")
    kept = dict(info.pax_headers)
    try:
        return _padded(info, kept, offset)
    finally:
        info.pax_headers = kept


def _padded(info: tarfile.TarInfo, kept: dict[str, str], offset: int) -> bytes:
    """The header with a ``comment`` record of the width that ends it at an ``ALIGN`` boundary.

    A header is 512-byte blocks, so its length only changes when the record crosses a block: the
    first guess is the width that adds the missing bytes; the few widths below it absorb the one or
    two bytes a longer length prefix adds, and one more block is tried when none fits."""

    def build(width: int) -> bytes:
        info.pax_headers = {**kept, _KEY: f"{_NOTE} {'.' * width}"}
        return header(info)

    shortest = build(0)
    wanted = -(offset + len(shortest)) % ALIGN  # bytes to add to the shortest padded header
    for extra_blocks in (0, ALIGN // tarfile.BLOCKSIZE):
        target = len(shortest) + wanted + extra_blocks * tarfile.BLOCKSIZE
        guess = wanted + extra_blocks * tarfile.BLOCKSIZE
        for width in range(guess, max(guess - 2 * tarfile.BLOCKSIZE, -1), -1):
            data = build(width)
            if len(data) == target:
                return data
            if len(data) < target:
                break  # narrower widths only shorten it further
    raise AssertionError(f"no comment width aligns a header at offset {offset}")  # unreachable: every block count is reachable
