"""Plain layers put each large file's data at a 4 KiB boundary of the blob (a padding ``comment`` in
its PAX header), so a filesystem with reflinks shares the model's extents instead of copying them
(tests/e2e/test_reflinked_layers.py checks the sharing on real XFS and btrfs). Here: the padding
lands every large file on the boundary whatever comes before it, the entries read back unchanged
with Python's tarfile and with GNU tar, compressed layers and small files are left as they were."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from compiler.oci.aligned_header import ALIGN, ALIGN_MIN, aligned_header, header
from compiler.oci.blobs import BlobStore
from compiler.oci.compress import open_layer
from compiler.oci.layer import Entry, write_layer

LONG = "d" * 140 + "/权重-é.safetensors"  # a PAX path record of its own, non-ASCII


def _files(folder: Path) -> list[Entry]:
    """A model like a user's: small files around large ones, names that need PAX records of their own."""
    sizes = {"config.json": 700, "a.bin": ALIGN_MIN, "b.bin": ALIGN_MIN + 1, LONG: 3 * ALIGN_MIN + 4095,
             "small.bin": ALIGN_MIN - 1, "z/last.bin": 2 * ALIGN_MIN + 513, "empty": 0}  # fmt: skip
    entries = []
    for name, size in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        entries.append(Entry(f"model/{name}", "file", 0o644, source=path))
    return entries + [Entry("model/given.txt", "file", 0o644, data=b"x" * 1000), Entry("model/l", "symlink", 0o777, target="a.bin")]


def _members(data: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        out = []
        for m in tar.getmembers():
            content = tar.extractfile(m).read() if m.isfile() else b""
            out.append((m.name, m.type, m.mode, m.uid, m.gid, m.mtime, m.linkname, content, m.offset_data, m.size))
        return out


def test_a_plain_layer_puts_every_large_file_on_a_block_and_reads_back_unchanged(tmp_path):
    entries = _files(tmp_path / "src")
    store = BlobStore(tmp_path / "store")
    layer = write_layer(entries, store, 7, compress=False)
    data = store.path(layer.digest).read_bytes()
    members = _members(data)
    large = [m for m in members if m[1] == tarfile.REGTYPE and m[9] >= ALIGN_MIN]
    assert len(large) == 4  # a.bin, b.bin, LONG, z/last.bin
    assert all(m[8] % ALIGN == 0 for m in large)
    assert any(m[8] % ALIGN for m in members if m[1] == tarfile.REGTYPE and 0 < m[9] < ALIGN_MIN)  # small ones: not padded
    for name, entry_path in (("model/" + LONG, LONG), ("model/z/last.bin", "z/last.bin")):
        found = next(m for m in members if m[0] == name)
        assert found[7] == (tmp_path / "src" / entry_path).read_bytes()
    # the same entries as the unpadded tar: names, kinds, modes, owners, times, link targets, contents
    compressed = write_layer(entries, store, 7, compression="gzip")
    with open(store.path(compressed.digest), "rb") as raw, open_layer(raw, compressed.media_type) as tar:
        unpadded = _members(tar.read())
    assert [m[:8] for m in members] == [m[:8] for m in unpadded]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert all("comment" not in m.pax_headers for m in tar.getmembers() if m.size < ALIGN_MIN)


def test_gnu_tar_reads_a_padded_layer_without_a_warning(tmp_path):
    entries = _files(tmp_path / "src")
    store = BlobStore(tmp_path / "store")
    layer = write_layer(entries, store, 7, compress=False)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(["tar", "-xf", str(store.path(layer.digest)), "-C", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (out / "model" / LONG).read_bytes() == (tmp_path / "src" / LONG).read_bytes()
    assert (out / "model" / "b.bin").read_bytes() == (tmp_path / "src" / "b.bin").read_bytes()
    assert os.readlink(out / "model" / "l") == "a.bin"


def test_the_padding_is_deterministic_and_compressed_layers_have_none(tmp_path):
    entries = _files(tmp_path / "src")
    first = write_layer(entries, BlobStore(tmp_path / "one"), 7, compress=False)
    second = write_layer(entries, BlobStore(tmp_path / "two"), 7, compress=False)
    assert first.digest == second.digest
    for compression in ("gzip", "zstd"):
        store = BlobStore(tmp_path / compression)
        layer = write_layer(entries, store, 7, compression=compression)
        with open(store.path(layer.digest), "rb") as raw, open_layer(raw, layer.media_type) as tar:
            with tarfile.open(fileobj=io.BytesIO(tar.read())) as read:
                assert all("comment" not in m.pax_headers for m in read.getmembers())


@pytest.mark.parametrize("size", [ALIGN_MIN, ALIGN_MIN + 1, 9 << 30])  # 9 GiB: a PAX size record of its own
@pytest.mark.parametrize("name", ["w.bin", "a/" * 60 + "w.bin", "权重/w.bin", "x" * 99])
def test_every_offset_and_name_lands_on_a_block(name, size):
    for offset in range(0, 3 * ALIGN, tarfile.BLOCKSIZE):
        info = tarfile.TarInfo(name)
        info.size = size
        padded = aligned_header(info, offset)
        assert (offset + len(padded)) % ALIGN == 0
        assert len(padded) <= len(header(info)) + ALIGN + tarfile.BLOCKSIZE  # never more than a block and its header
        assert info.pax_headers == {}  # the caller's TarInfo is left as it was
        parsed = tarfile.TarInfo.frombuf(padded[-tarfile.BLOCKSIZE:], tarfile.ENCODING, "surrogateescape")
        assert parsed.type == tarfile.REGTYPE


def test_a_small_file_or_an_aligned_offset_gets_no_padding():
    info = tarfile.TarInfo("w.bin")
    info.size = ALIGN_MIN - 1
    assert aligned_header(info, 512) == header(info)
    info.size = ALIGN_MIN
    assert aligned_header(info, ALIGN - tarfile.BLOCKSIZE) == header(info)  # its 512-byte header ends on the block
    with pytest.raises(ValueError):
        aligned_header(info, 100)
