"""Model archives unpacked at registration (azureml.unpack): a real 2000-file archive, and crafted bad ones."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from compiler.workspace.archives import ArchiveError, ArchiveLimits, check_archive, unpacked, wants_unpack
from tests.conftest import run_pkgc


def make_archive(path: Path, members: list[tuple[str, bytes | None, bytes]], mode: str = "w:gz") -> Path:
    """``members``: (name, data for a file / None, type); links take their target as data."""
    with tarfile.open(path, mode) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type, info.mtime = kind, 0
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = data.decode()
                tar.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def file(name: str, data: bytes = b"x") -> tuple:
    return (name, data, tarfile.REGTYPE)


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


def test_members_without_one_top_folder_go_into_a_folder_named_after_the_archive(tmp_path):
    archive = make_archive(tmp_path / "m.tgz", [file("a.pkl"), file("sub/b.pkl")])
    with unpacked(archive) as tree:
        assert tree.name == "m" and (tree / "a.pkl").is_file() and (tree / "sub" / "b.pkl").is_file()
    dotted = make_archive(tmp_path / "dotted.tar.gz", [("./", None, tarfile.DIRTYPE), ("./model", None, tarfile.DIRTYPE), file("./model/a.pkl")])
    with unpacked(dotted) as tree:  # tar -C dir . : the one top folder is still 'model'
        assert tree.name == "model" and (tree / "a.pkl").is_file()
    single = make_archive(tmp_path / "one.tar.gz", [file("model.pkl")])
    with unpacked(single) as tree:
        assert tree.name == "one" and (tree / "model.pkl").is_file()


def test_links_inside_the_tree_are_kept(tmp_path):
    archive = make_archive(tmp_path / "m.tar.gz", [file("m/a.txt", b"A"), ("m/link", b"a.txt", tarfile.SYMTYPE),
                                                   ("m/hard", b"m/a.txt", tarfile.LNKTYPE)])  # fmt: skip
    with unpacked(archive) as tree:
        assert (tree / "link").read_text() == "A" and (tree / "hard").read_text() == "A"


BAD = {
    "absolute": ([file("/etc/cron.d/evil")], "has an absolute name"),
    "dotdot": ([file("m/../../evil")], "leaves the archive's tree ('..')"),
    "symlink-out": ([file("m/a"), ("m/l", b"../../etc/passwd", tarfile.SYMTYPE)], "outside the archive's tree"),
    "symlink-absolute": ([file("m/a"), ("m/l", b"/etc/passwd", tarfile.SYMTYPE)], "outside the archive's tree"),
    "hardlink-out": ([file("m/a"), ("m/h", b"../etc/passwd", tarfile.LNKTYPE)], "outside the archive's tree"),
    "hardlink-unread": ([file("m/a"), ("m/h", b"m/b", tarfile.LNKTYPE)], "not a file read before it"),
    "device": ([file("m/a"), ("m/dev", None, tarfile.CHRTYPE)], "is a device, FIFO or other special file"),
    "fifo": ([file("m/a"), ("m/fifo", None, tarfile.FIFOTYPE)], "is a device, FIFO or other special file"),
    "control": ([file("m/a\nb")], "control characters"),
    "empty": ([("m", None, tarfile.DIRTYPE)], "holds no files"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_crafted_bad_archives_are_refused(tmp_path, case):
    members, message = BAD[case]
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_archive(make_archive(tmp_path / "bad.tar.gz", members))


def test_limits_on_files_and_bytes(tmp_path):
    archive = make_archive(tmp_path / "m.tar.gz", [file(f"m/{i}", b"0123456789") for i in range(20)])
    with pytest.raises(ArchiveError, match="more than 10 members"):
        check_archive(archive, ArchiveLimits(max_files=10))
    with pytest.raises(ArchiveError, match="more than 100 bytes"):
        check_archive(archive, ArchiveLimits(max_bytes=100))
    assert len(check_archive(archive, ArchiveLimits(max_files=20, max_bytes=200))) == 20


def test_a_bomb_stops_at_the_header_before_anything_is_written(tmp_path):
    """A 64 MiB member of zeros compresses to ~64 KB; its declared size stops it before extraction."""
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("m/zeros")
        info.size = 64 * 1024 * 1024

        class Zeros(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, buffer):
                buffer[:] = bytes(len(buffer))
                return len(buffer)

        tar.addfile(info, io.BufferedReader(Zeros()))
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        with unpacked(bomb, ArchiveLimits(max_bytes=1024 * 1024)):
            pass


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path):
    env = {"PKGC_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"}
    evil = make_archive(tmp_path / "evil.tar.gz", [file("m/ok"), file("m/../../escaped")])
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(evil), "--properties", "azureml.unpack=true", env=env)
    assert proc.returncode == 2 and proc.stderr.count("pkgc: error:") == 1
    assert "member 'm/../../escaped' leaves the archive's tree" in proc.stderr
    not_tar = tmp_path / "model.tar.gz"
    not_tar.write_bytes(b"\x1f\x8b garbage")
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(not_tar), "--properties", "azureml.unpack=true", env=env)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(tmp_path), "--properties", "azureml.unpack=maybe", env=env)
    assert proc.returncode == 2 and "azureml.unpack='maybe' must be true or false" in proc.stderr
    proc = run_pkgc("model", "create", "-n", "m", "-p", str(evil), "--properties", "azureml.unpack", env=env)
    assert proc.returncode == 2 and "is not KEY=VALUE" in proc.stderr
    assert not (tmp_path / "ws" / "models").exists() and not list((tmp_path / "ws" / "trees").glob("[0-9a-f]*"))
    assert not (tmp_path.parent / "escaped").exists()


def test_unpack_property_values():
    assert wants_unpack({"azureml.unpack": "True"}) and not wants_unpack({"azureml.unpack": "false"}) and not wants_unpack({})
