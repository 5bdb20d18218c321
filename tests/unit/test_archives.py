"""Model archives unpacked at registration (azureml.unpack): a real 2000-file archive, and hostile ones built here.

Every hostile archive is refused naming its member, leaves nothing in the staging area and changes
nothing outside it (``snapshot`` before and after), on any interpreter: pkgc does not use tarfile's
extraction or its filters, so these tests run the same on Debian's /usr/bin/python3 (3.11.2, no
``filter=``) as on a current Python.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest

from compiler.workspace import Workspace
from compiler.workspace.archive_members import MemberTable
from compiler.workspace.archives import ArchiveError, ArchiveLimits, unpacked, wants_unpack
from tests.conftest import run_pkgc

SYM, HARD, DIR, REG = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.REGTYPE


def make_archive(path: Path, members: list[tuple[str, bytes | None, bytes]], mode: str = "w:gz") -> Path:
    """``members``: (name, data for a file / None, type); links take their target as data."""
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type, info.mtime = kind, 0
            if kind in (SYM, HARD):
                info.linkname = data.decode()
                tar.addfile(info)
            elif kind == REG:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def file(name: str, data: bytes = b"x") -> tuple:
    return (name, data, REG)


def link(name: str, target: str, kind: bytes = SYM) -> tuple:
    return (name, target.encode(), kind)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path below ``root`` with its type, link target or content: nothing followed."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                seen[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                seen[str(path.relative_to(root))] = ("file", path.read_bytes())
            else:
                seen[str(path.relative_to(root))] = ("dir" if stat.S_ISDIR(mode) else "other", None)
    return seen


@pytest.fixture
def staging(tmp_path, monkeypatch) -> Path:
    """A temp folder of the test's own for pkgc's staging folders, with a sentinel file beside it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    (tmp_path / "sentinel.txt").write_text("the host's file")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def refused(archive: Path, tmp_path: Path, message: str, limits: ArchiveLimits = ArchiveLimits()) -> str:
    """Unpack ``archive``: it must be refused with ``message``, nothing changed under tmp_path, no staging left."""
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as caught:
        with unpacked(archive, limits):
            pytest.fail("the archive was unpacked")
    text = str(caught.value)
    assert message in text, text
    assert "\n" not in text and len(text) < 400
    assert snapshot(tmp_path) == before  # nothing written anywhere, the staging folder removed
    return text


def test_a_2000_file_archive_is_registered_unpacked(tmp_path):
    archive = make_archive(tmp_path / "big-model.tar.gz", [file(f"models/part_{i // 100}/w{i}.txt", str(i).encode()) for i in range(2000)])
    env = {"PKGC_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"}
    proc = run_pkgc("model", "create", "-n", "big", "-p", str(archive), "--properties", "azureml.unpack=true", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["root_name"] == "models" and record["properties"] == {"azureml.unpack": "true"}
    assert record["source"] == str(archive)
    stored = tmp_path / "ws" / "trees" / record["tree"] / "models"
    assert sum(1 for p in stored.rglob("*") if p.is_file()) == 2000
    assert (stored / "part_19" / "w1999.txt").read_text() == "1999"
    # without the property the archive itself is the model, as Azure ML keeps it
    proc = run_pkgc("model", "create", "-n", "big", "-p", str(archive), "--json", env=env)
    assert json.loads(proc.stdout)["root_name"] == "big-model.tar.gz"


def test_members_without_one_top_folder_go_into_a_folder_named_after_the_archive(tmp_path, staging):
    archive = make_archive(tmp_path / "m.tgz", [file("a.pkl"), file("sub/b.pkl")])
    with unpacked(archive) as tree:
        assert tree.name == "m" and (tree / "a.pkl").is_file() and (tree / "sub" / "b.pkl").is_file()
    dotted = make_archive(tmp_path / "dotted.tar.gz", [("./", None, DIR), ("./model", None, DIR), file("./model/a.pkl")])
    with unpacked(dotted) as tree:  # tar -C dir . : the one top folder is still 'model'
        assert tree.name == "model" and (tree / "a.pkl").is_file()
    single = make_archive(tmp_path / "one.tar.bz2", [file("model.pkl")], mode="w:bz2")
    with unpacked(single) as tree:
        assert tree.name == "one" and (tree / "model.pkl").is_file()
    plain = make_archive(tmp_path / "x.tar.xz", [file("w/a", b"A"), file("w/exe", b"#!")], mode="w:xz")
    with unpacked(plain) as tree:
        assert tree.name == "w" and (tree / "a").read_text() == "A"
    assert list(staging.iterdir()) == []


@pytest.mark.parametrize("name", ["...tar.gz", ".tar.gz", "..tgz", "..tar", "a\tb.tar.gz"])
def test_odd_archive_names_unpack_into_a_folder_of_pkgcs_own(tmp_path, staging, name):
    """'...tar.gz' has the stem '..': its members once landed in the temp folder itself."""
    (staging / "a.txt").write_text("pkgc's neighbour")
    archive = make_archive(tmp_path / name, [file("a.txt", b"from the archive"), file("b.txt")], mode="w:gz" if "gz" in name else "w")
    before = snapshot(tmp_path)
    with unpacked(archive) as tree:
        stage = next(p for p in staging.iterdir() if p.name.startswith("pkgc-unpack-"))
        assert tree.name == "model" and tree.parent.parent == stage
        assert (tree / "a.txt").read_text() == "from the archive"
    assert snapshot(tmp_path) == before and (staging / "a.txt").read_text() == "pkgc's neighbour"


def test_links_inside_the_tree_are_kept(tmp_path, staging):
    archive = make_archive(tmp_path / "m.tar.gz", [
        file("m/a.txt", b"A"), link("m/link", "a.txt"), link("m/hard", "m/a.txt", HARD),
        file("m/blobs/123", b"W"), link("m/snap/v1/w.bin", "../../blobs/123"),  # a Hugging Face cache's layout
        link("m/current", "snap/v1"), link("m/via", "current/w.bin"),  # a link through a link, ending inside
        link("m/latest", "snap"), link("m/snap/cur", "v1"),  # a folder link into a folder with a folder link: no loop
    ])  # fmt: skip
    with unpacked(archive) as tree:
        assert (tree / "link").read_text() == "A" and (tree / "hard").read_text() == "A"
        assert (tree / "snap" / "v1" / "w.bin").read_text() == "W" and (tree / "via").read_text() == "W"
        assert os.readlink(tree / "via") == "current/w.bin" and (tree / "latest" / "cur" / "w.bin").read_text() == "W"
        stored = Workspace(tmp_path / "ws").tree_path(Workspace(tmp_path / "ws").store_tree(tree)) / "m"
        assert (stored / "via").read_text() == "W" and (stored / "latest" / "cur" / "w.bin").read_text() == "W"
    assert list(staging.iterdir()) == []


def cve_2025_4517_archive(path: Path, dest_len: int, target: Path, drop: int = 0) -> Path:
    """The PATH_MAX realpath chain of CVE-2025-4517 (CPython's own test for it), aimed at ``target``.

    16 nested directories of long names, each with a one-letter link to the next; a link at the end of
    the letters back up 16 levels (the destination, though realpath cannot expand it); ``escape`` ->
    that link and '..' 17 times (lexically inside, physically '/'); then a hard link to and a file
    through ``escape``: every name and link target is lexically inside the tree. ``drop``: leave out
    that many of the last steps' leaders (the link through the letters, the hard link, the file), so
    each later step is seen on its own."""
    steps = "abcdefghijklmnop"
    component = "d" * ((os.pathconf("/", "PC_PATH_MAX") - dest_len - 1) // (len(steps) + 1))
    members, folder = [], ""
    for step in steps:
        members += [(os.path.join(folder, component), None, DIR), link(os.path.join(folder, step), component)]
        folder = os.path.join(folder, component)
    last = os.path.join(*steps, "l" * 254)
    tail = [link(last, os.path.join(*[".."] * len(steps))),
            link("flaglink", os.path.join("escape", str(target).lstrip("/")), HARD),
            file(os.path.join("escape", str(target).lstrip("/")), b"overwritten by the archive"),
            file(os.path.join("escape", str(target.parent).lstrip("/"), "new-file"), b"written by the archive")]  # fmt: skip
    members += tail[:1] + [link("escape", os.path.join(last, *[".."] * (len(steps) + 1)))] + tail[1:]
    return make_archive(path, [m for m in members if m not in tail[:drop]], mode="w")


def test_the_cve_2025_4517_chain_is_refused_by_member_and_leaves_nothing(tmp_path, staging):
    dest_len = len(str(staging)) + len("/pkgc-unpack-12345678/tree")
    archive = cve_2025_4517_archive(tmp_path / "chain.tar", dest_len, tmp_path / "sentinel.txt")
    text = refused(archive, tmp_path, "a link in the archive (pkgc follows no link while unpacking)")
    assert "member 'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/lll" in text and "lies under 'a'" in text
    assert (tmp_path / "sentinel.txt").read_text() == "the host's file" and not (tmp_path / "new-file").exists()


@pytest.mark.parametrize("drop, message", [
    (1, "member 'flaglink' is a hard link to 'escape/"),  # without the link through the letters
    (2, "member 'escape/"),  # and without the hard link: the file through 'escape'
    (4, "member 'escape' is a link to 'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/lll"),  # the link alone, at the end
])  # fmt: skip
def test_each_step_of_the_cve_chain_is_refused_on_its_own(tmp_path, staging, drop, message):
    dest_len = len(str(staging)) + len("/pkgc-unpack-12345678/tree")
    archive = cve_2025_4517_archive(tmp_path / "chain.tar", dest_len, tmp_path / "sentinel.txt", drop)
    text = refused(archive, tmp_path, message)
    assert drop != 2 or "lies under 'escape', a link in the archive" in text
    assert drop != 4 or "which is not in the archive (dangling)" in text


def test_the_cve_chain_is_real_where_the_interpreter_is_vulnerable(tmp_path):
    """The same archive overwrites the sentinel through tarfile's own 'data' filter on an unfixed
    interpreter: the chain above is the attack, not a look-alike. Skipped where tarfile refuses it."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "sentinel.txt").write_text("the host's file")
    archive = cve_2025_4517_archive(tmp_path / "chain.tar", len(str(dest)), tmp_path / "sentinel.txt")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except TypeError:
        pytest.skip("this interpreter's tarfile has no filters (Debian's 3.11.2)")
    except (tarfile.TarError, OSError) as exc:
        pytest.skip(f"this interpreter has the CVE-2025-4517 fix: {exc}")
    assert (tmp_path / "sentinel.txt").read_text() == "overwritten by the archive"
    assert (tmp_path / "new-file").read_text() == "written by the archive"


def test_a_link_through_a_link_that_leaves_the_tree_is_refused(tmp_path, staging):
    """m/esc -> a/b/c/top/../.. is inside lexically; top -> ../../.. makes it two levels above m."""
    chain = [("m/a/b/c", None, DIR), link("m/esc", "a/b/c/top/../.."), link("m/a/b/c/top", "../../..")]
    text = refused(make_archive(tmp_path / "m.tar.gz", [file("m/f"), *chain]), tmp_path, "outside the archive's tree")
    assert "member 'm/esc' is a link to 'a/b/c/top/../..'" in text
    through = make_archive(tmp_path / "n.tar.gz", [file("m/f"), *chain, file("m/esc/" + str(tmp_path / "sentinel.txt").lstrip("/"))])
    text = refused(through, tmp_path, "lies under 'm/esc', a link in the archive")
    assert f"member 'm/esc/{str(tmp_path).lstrip('/')}"[:80] in text


BAD = {
    "absolute": ([file("/etc/cron.d/evil")], "member '/etc/cron.d/evil' has an absolute name"),
    "dotdot": ([file("m/../../evil")], "member 'm/../../evil' leaves the archive's tree ('..')"),
    "symlink-out": ([file("m/a"), link("m/l", "../../etc/passwd")], "member 'm/l' is a link to '../../etc/passwd', outside"),
    "symlink-absolute": ([file("m/a"), link("m/l", "/etc/passwd")], "member 'm/l' is a link to '/etc/passwd', outside"),
    "symlink-dangling": ([file("m/a"), link("m/l", "b")], "member 'm/l' is a link to 'b', which is not in the archive"),
    "symlink-slash-to-file": ([file("m/a"), link("m/l", "a/")], "member 'm/l' is a link to 'a/', which is not in the archive"),
    "symlink-loop": ([file("m/a"), link("m/l1", "l2"), link("m/l2", "l1")], "a loop of links"),
    "symlink-loop-through-folders": ([file("m/a/f"), ("m/b", None, DIR), link("m/a/l", "../b"), link("m/b/l", "../a")],
                                     "a loop through 'm/"),
    "symlink-to-parent": ([file("m/s/a"), link("m/s/up", "..")], "member 'm/s/up' is a link to '..', a folder that holds it"),
    "file-through-symlink": ([("m/d", None, DIR), link("m/l", "d"), file("m/l/x")], "member 'm/l/x' lies under 'm/l', a link"),
    "folder-through-symlink": ([("m/d", None, DIR), link("m/l", "d"), ("m/l/x", None, DIR)], "lies under 'm/l', a link"),
    "through-a-file": ([file("m/a"), file("m/a/b")], "member 'm/a/b' lies under 'm/a', a file in the archive"),
    "hardlink-out": ([file("m/a"), link("m/h", "../etc/passwd", HARD)], "member 'm/h' is a link to '../etc/passwd', outside"),
    "hardlink-absolute": ([file("m/a"), link("m/h", "/etc/passwd", HARD)], "member 'm/h' is a link to '/etc/passwd', outside"),
    "hardlink-unread": ([file("m/a"), link("m/h", "m/b", HARD)], "member 'm/h' is a hard link to 'm/b', which is not a file unpacked before it"),
    "hardlink-through-symlink": ([("m/d", None, DIR), file("m/d/f"), link("m/l", "d"), link("m/h", "m/l/f", HARD)],
                                 "member 'm/h' is a hard link to 'm/l/f', which is not a file"),
    "hardlink-to-symlink": ([file("m/f"), link("m/l", "f"), link("m/h", "m/l", HARD)], "which is not a file unpacked"),
    "file-over-symlink": ([file("m/f"), link("m/l", "f"), file("m/l", b"over")], "member 'm/l' appears twice"),
    "symlink-over-file": ([file("m/f"), link("m/f", "a")], "member 'm/f' appears twice"),
    "duplicate-file": ([file("m/f"), file("m/f", b"again")], "member 'm/f' appears twice in the archive (as a file before)"),
    "chr-device": ([file("m/a"), ("m/dev", None, tarfile.CHRTYPE)], "member 'm/dev' is a device, FIFO or other special file"),
    "blk-device": ([file("m/a"), ("m/blk", None, tarfile.BLKTYPE)], "member 'm/blk' is a device, FIFO or other special file"),
    "fifo": ([file("m/a"), ("m/fifo", None, tarfile.FIFOTYPE)], "member 'm/fifo' is a device, FIFO or other special file"),
    "unknown-type": ([file("m/a"), ("m/z", None, b"Z")], "member 'm/z' is a device, FIFO or other special file"),
    "control": ([file("m/a\nb")], "member 'm/a\\nb' has control characters in its name"),
    "control-target": ([file("m/a"), link("m/l", "a\rb")], "member 'm/l' has control characters in its link target"),
    "long-part": ([file("m/" + "x" * 300)], "has a name with a part longer than 255 bytes"),
    "root-as-file": ([file("./")], "names the archive's root folder, not a file"),
    "empty": ([("m", None, DIR)], "holds no files"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_crafted_bad_archives_are_refused(tmp_path, staging, case):
    members, message = BAD[case]
    refused(make_archive(tmp_path / "bad.tar.gz", members), tmp_path, message)


def test_a_sparse_member_is_refused_before_its_map_is_read(tmp_path, staging):
    archive = tmp_path / "sparse.tar"
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("m/a"), io.BytesIO(b""))
        info = tarfile.TarInfo("m/holes")
        info.type = tarfile.GNUTYPE_SPARSE
        tar.addfile(info)
    refused(archive, tmp_path, "the member after 'm/a' is a sparse file")


def test_an_oversized_extended_header_is_refused_before_it_is_read(tmp_path, staging):
    """tarfile reads a pax header whole: a 100 KB name (or a gigabyte of zeros) is refused at its size."""
    archive = make_archive(tmp_path / "pax.tar.gz", [file("m/a"), file("m/" + "/".join(["x" * 200] * 500))])
    refused(archive, tmp_path, "the member after 'm/a' has an extended header of")


def test_limits_on_files_and_bytes(tmp_path, staging):
    archive = make_archive(tmp_path / "m.tar.gz", [file(f"m/{i}", b"0123456789") for i in range(20)])
    refused(archive, tmp_path, "member 'm/9' makes more than 10 files, folders and links", ArchiveLimits(max_files=10))
    refused(archive, tmp_path, "member 'm/10' makes the archive unpack to more than 100 bytes", ArchiveLimits(max_bytes=100))
    folders = make_archive(tmp_path / "f.tar.gz", [file("/".join(["d"] * 30) + "/deep")])  # one member, 30 folders
    refused(folders, tmp_path, "member 'd/d/d/d/d/d/d/d/d/d", ArchiveLimits(max_files=20))
    repeated = make_archive(tmp_path / "r.tar.gz", [file("m/a")] + [("m/", None, DIR)] * 20)  # members that make nothing
    refused(repeated, tmp_path, "member 'm' is one more than 10 members (the limit)", ArchiveLimits(max_files=10))
    deep = make_archive(tmp_path / "n.tar.gz", [file("/".join(["d" * 200] * 20) + f"/{i}") for i in range(30)])
    text = refused(deep, tmp_path, "names and link targets more than 100000 bytes", ArchiveLimits(max_name_bytes=100_000))
    assert "member '" + "d" * 70 in text  # the folders' paths: 42 KB once, then 4 KB a file
    with unpacked(archive, ArchiveLimits(max_files=21, max_bytes=200)) as tree:  # 20 files and the folder m
        assert sorted(int(p.name) for p in tree.iterdir()) == list(range(20))


def test_content_repeated_by_links_counts_against_the_limit(tmp_path, staging):
    """The store keeps a link as a copy of what it leads to: 1 KB and 50 links to it is 51 KB to store."""
    kb = b"k" * 1000
    hard = make_archive(tmp_path / "h.tar.gz", [file("m/w", kb), *[link(f"m/h{i}", "m/w", HARD) for i in range(50)]])
    refused(hard, tmp_path, "member 'm/h9' makes the archive unpack to more than 10000 bytes", ArchiveLimits(max_bytes=10_000))
    soft = make_archive(tmp_path / "s.tar.gz", [file("m/w", kb), *[link(f"m/s{i}", "w") for i in range(50)]])
    refused(soft, tmp_path, "member 'm/s9' makes the archive unpack to more than 10000 bytes", ArchiveLimits(max_bytes=10_000))
    # folder links that each repeat the folder before them twice: 2**20 copies of 1 KB from a 22-member archive
    doubling = [file("m/d0/w", kb)] + [m for i in range(20) for m in (link(f"m/d{i + 1}/a", f"../d{i}"), link(f"m/d{i + 1}/b", f"../d{i}"))]
    text = refused(make_archive(tmp_path / "d.tar.gz", doubling), tmp_path, "makes the archive unpack to more than 1000000 bytes",
                   ArchiveLimits(max_bytes=1_000_000))  # fmt: skip
    assert "member 'm/d" in text
    # the same with empty files: 2**20 names to store, past the store's 500 000 a tree
    empty = [file("m/d0/w", b"")] + doubling[1:]
    text = refused(make_archive(tmp_path / "e.tar.gz", empty), tmp_path, "makes the stored tree more than 500000 files and folders")
    assert "member 'm/d" in text
    with unpacked(soft, ArchiveLimits(max_bytes=51_000)) as tree:  # at the limit: kept
        assert (tree / "s49").read_bytes() == kb


class Zeros(io.RawIOBase):
    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = bytes(len(buffer))
        return len(buffer)


def test_a_bomb_stops_at_the_header_before_anything_is_written(tmp_path, staging):
    """A 64 MiB member of zeros compresses to ~64 KB; its declared size stops it before extraction."""
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("m/zeros")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, io.BufferedReader(Zeros()))
    assert bomb.stat().st_size < 200_000
    refused(bomb, tmp_path, "member 'm/zeros' makes the archive unpack to more than 1048576 bytes", ArchiveLimits(max_bytes=1024 * 1024))
    with unpacked(bomb, ArchiveLimits(max_bytes=64 * 1024 * 1024)) as tree:  # within the limit it is a real file
        assert (tree / "zeros").stat().st_size == 64 * 1024 * 1024


@pytest.mark.parametrize("codec", ["bz2", "xz", "gz"])
def test_a_compressed_bomb_is_decompressed_by_bounded_blocks(tmp_path, staging, codec):
    """64 MiB of zeros in a few hundred bytes of bzip2: tarfile's own 'r|*' holds ~200 MB before it sees
    the first header (800 MB for 256 MiB); pkgc's reader holds a few MB (the xz decoder most) and refuses at the header."""
    import bz2
    import lzma
    import zlib

    compressor = {"bz2": lambda: bz2.BZ2Compressor(9), "xz": lambda: lzma.LZMACompressor(),
                  "gz": lambda: zlib.compressobj(9, zlib.DEFLATED, 31)}[codec]()  # fmt: skip
    info = tarfile.TarInfo("m/zeros")
    info.size = 64 << 20
    chunks = [compressor.compress(info.tobuf())] + [compressor.compress(bytes(1 << 20)) for _ in range(64)]
    bomb = tmp_path / f"bomb.tar.{codec}"
    bomb.write_bytes(b"".join(chunks + [compressor.compress(bytes(10240)), compressor.flush()]))
    tracemalloc.start()
    try:
        refused(bomb, tmp_path, "member 'm/zeros' makes the archive unpack to more than 1048576 bytes",
                ArchiveLimits(max_bytes=1 << 20))  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16_000_000, peak


def test_a_truncated_archive_is_refused_and_leaves_nothing(tmp_path, staging):
    whole = make_archive(tmp_path / "whole.tar.gz", [file(f"m/{i}", os.urandom(50_000)) for i in range(10)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    refused(cut, tmp_path, "cannot be read")


def test_headers_are_not_kept_while_unpacking(tmp_path, staging):
    """tarfile keeps every header it read; 300 members with 60 KB pax headers each would be 18 MB held."""
    archive = tmp_path / "pax.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for i in range(300):
            info = tarfile.TarInfo(f"m/{i}")
            info.pax_headers = {"comment": "c" * 60_000}
            tar.addfile(info, io.BytesIO(b""))
    tracemalloc.start()
    try:
        with unpacked(archive) as tree:
            assert len(list(tree.iterdir())) == 300
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak


def test_a_killed_unpack_leaves_a_staging_folder_the_next_one_removes(tmp_path, staging):
    archive = make_archive(tmp_path / "m.tar.gz", [file("m/a", b"A")])
    code = ("import os, sys, tempfile; tempfile.tempdir = sys.argv[2]; from pathlib import Path; "
            "from compiler.workspace.archives import unpacked\n"
            "with unpacked(Path(sys.argv[1])): os.kill(os.getpid(), 9)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(archive), str(staging)], cwd=Path(__file__).parents[2])
    assert proc.returncode == -9
    (left,) = staging.iterdir()
    assert (left / "tree" / "m" / "a").read_text() == "A"
    live = Path(tempfile.mkdtemp(prefix="pkgc-unpack-"))  # another unpack's, still running: its lock is held
    (live / ".lock").touch()
    held = os.open(live / ".lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    young = Path(tempfile.mkdtemp(prefix="pkgc-unpack-"))  # made, not locked yet
    old = Path(tempfile.mkdtemp(prefix="pkgc-unpack-"))  # made, never locked: killed an hour ago
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (staging / "pkgc-unpack-not-a-folder").write_text("kept")
    try:
        with unpacked(archive) as tree:
            assert (tree / "a").read_text() == "A"
    finally:
        os.close(held)
    assert sorted(p.name for p in staging.iterdir()) == sorted([live.name, young.name, "pkgc-unpack-not-a-folder"])


def test_random_archives_write_nothing_outside_and_keep_only_links_that_stay_inside(tmp_path, staging):
    """300 archives of random names, folders, files and links (targets with '..', absolute, through other
    links): each is refused in one line or gives a tree whose every link ends inside it, which the store
    then accepts; nothing outside the staging folder changes, nothing is left behind."""
    import random

    parts = ["a", "b", "c", "..", ".", "l", "m"]
    workspace = Workspace(tmp_path / "ws")
    workspace.store_tree(make_archive(tmp_path / "seed.tar", [file("x")], mode="w"))  # the workspace exists before
    kept = 0
    for seed in range(300):
        rng = random.Random(seed)
        name = lambda: "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))  # noqa: E731
        members = []
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.4:
                members.append(file(name()))
            elif kind < 0.6:
                members.append((name(), None, DIR))
            elif kind < 0.9:
                members.append(link(name(), rng.choice(["", "", "../", "/", f"{tmp_path}/"]) + name()))
            else:
                members.append(link(name(), name(), HARD))
        archive = make_archive(tmp_path / "r.tar", members, mode="w")
        before = snapshot(tmp_path / "tmp"), (tmp_path / "sentinel.txt").read_text(), sorted(os.listdir(tmp_path))
        try:
            with unpacked(archive) as tree:
                inside = os.path.realpath(tree)
                for folder, dirs, files in os.walk(tree):
                    for entry in (Path(folder) / n for n in dirs + files if os.path.islink(Path(folder) / n)):
                        real = os.path.realpath(entry)
                        assert os.path.exists(entry) and (real + "/").startswith(inside + "/"), (seed, entry)
                workspace.store_tree(tree)
                kept += 1
        except ArchiveError as exc:
            assert "\n" not in str(exc) and "member" in str(exc) or "holds no files" in str(exc), (seed, str(exc))
        after = snapshot(tmp_path / "tmp"), (tmp_path / "sentinel.txt").read_text(), sorted(os.listdir(tmp_path))
        assert after == before, seed
    assert 0 < kept < 300


def test_the_table_resolves_links_as_the_kernel_would():
    """The physical resolution the checks rely on, against the archive's table alone."""
    table = MemberTable()
    for name, kind, target in [("m/a/b", DIR, ""), ("m/up", SYM, "a/b/.."), ("m/deep", SYM, "a/b"), ("m/x", SYM, "deep/../b")]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        table.add(info)
    assert table.resolve("m/up") == "m/a" and table.resolve("m/deep") == "m/a/b" and table.resolve("m/x") == "m/a/b"


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path):
    env = {"PKGC_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    (tmp_path / "sentinel.txt").write_text("the host's file")
    evil = make_archive(tmp_path / "evil.tar.gz", [file("m/ok"), file("m/../../escaped")])
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(evil), "--properties", "azureml.unpack=true", env=env)
    assert proc.returncode == 2 and proc.stderr.count("pkgc: error:") == 1
    assert "member 'm/../../escaped' leaves the archive's tree" in proc.stderr
    chain = cve_2025_4517_archive(tmp_path / "chain.tar", len(str(tmp_path / "tmp")) + 26, tmp_path / "sentinel.txt")
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(chain), "--properties", "azureml.unpack=true", env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "member 'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/lll" in proc.stderr and "Traceback" not in proc.stderr
    not_tar = tmp_path / "model.tar.gz"
    not_tar.write_bytes(b"\x1f\x8b garbage")
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(not_tar), "--properties", "azureml.unpack=true", env=env)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(tmp_path), "--properties", "azureml.unpack=maybe", env=env)
    assert proc.returncode == 2 and "azureml.unpack='maybe' must be true or false" in proc.stderr
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(evil), "--properties", "azureml.unpack", env=env)
    assert proc.returncode == 2 and "is not KEY=VALUE" in proc.stderr
    assert not (tmp_path / "ws" / "models").exists() and not list((tmp_path / "ws" / "trees").glob("[0-9a-f]*"))
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "new-file").exists()
    assert (tmp_path / "sentinel.txt").read_text() == "the host's file" and list((tmp_path / "tmp").iterdir()) == []


def test_cli_registers_an_odd_named_archive_under_pkgcs_folder_name(tmp_path):
    env = {"PKGC_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    archive = make_archive(tmp_path / "...tar.gz", [file("a.txt", b"A"), file("b.txt", b"B")])
    proc = run_pkgc("model", "create", "-n", "dots", "-p", str(archive), "--properties", "azureml.unpack=true", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["root_name"] == "model"
    assert (tmp_path / "ws" / "trees" / record["tree"] / "model" / "b.txt").read_text() == "B"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_unpack_property_values():
    assert wants_unpack({"azureml.unpack": "True"}) and not wants_unpack({"azureml.unpack": "false"}) and not wants_unpack({})
