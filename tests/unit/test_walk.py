"""Package content: one walk for the workspace store and the build context (regular files and folders
only, links inside the tree dereferenced, anything else refused naming the path), stale staging
folders cleaned, files written with the umask's mode."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from compiler.errors import PkgcError
from compiler.lock.lockfile import write_lock
from compiler.lock.types import Lock, LockedPackage
from compiler.plan.types import ContextFile
from compiler.render.context import write_context
from compiler.workspace import Workspace
from compiler.workspace.trees import clean_stale_staging, store_blob, store_tree, tree_digest
from compiler.workspace.walk import ContentError, open_exact, walk
from tests.conftest import run_pkgc


@pytest.fixture
def tree(tmp_path) -> Path:
    """model/ with a file, a sub-folder, and links to both inside the tree."""
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(b"w" * 10)
    (root / "sub" / "config.json").write_text("{}")
    os.symlink("weights.bin", root / "same-weights.bin")
    os.symlink("sub", root / "linked-sub")
    return root


def _tar_names(files: tuple[ContextFile, ...]) -> dict[str, tarfile.TarInfo]:
    out = io.BytesIO()
    write_context("FROM scratch\n", files, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_links_inside_the_tree_are_stored_as_what_they_point_to(tree, tmp_path):
    rels = [(e.rel, e.is_dir) for e in walk(tree)]
    assert rels == [("", True), ("same-weights.bin", False), ("weights.bin", False), ("linked-sub", True),
                    ("linked-sub/config.json", False), ("sub", True), ("sub/config.json", False)]  # fmt: skip
    digest = store_tree(tree, tmp_path / "trees")
    stored = tmp_path / "trees" / digest / "model"
    assert not any(p.is_symlink() for p in stored.rglob("*"))
    assert (stored / "same-weights.bin").read_bytes() == b"w" * 10
    assert (stored / "linked-sub" / "config.json").read_text() == "{}"
    assert tree_digest(stored) == digest  # the stored copy (regular files only) has the same digest
    members = _tar_names((ContextFile("code/content", source=tree),))
    assert members["code/content/same-weights.bin"].isfile() and members["code/content/linked-sub"].isdir()
    assert members["code/content/linked-sub/config.json"].size == 2


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda root: os.symlink("/etc/hostname", root / "out"), "is a link leaving the tree"),
        (lambda root: os.symlink("../..", root / "sub" / "up"), "is a link leaving the tree"),
        (lambda root: os.symlink("nowhere", root / "dangling"), "is a dangling link"),
        (lambda root: os.symlink("loop", root / "loop"), "is a link loop"),
        (lambda root: os.symlink("..", root / "sub" / "parent"), "is a link loop"),
        (lambda root: os.mkfifo(root / "fifo"), "is a FIFO"),
        (lambda root: socket.socket(socket.AF_UNIX).bind(str(root / "sock")), "is a socket"),
    ],
)
def test_everything_else_is_refused_naming_it_in_store_and_context(tree, tmp_path, make, words):
    make(tree)
    for attempt in (lambda: store_tree(tree, tmp_path / "trees"), lambda: _tar_names((ContextFile("code/content", source=tree),))):
        with pytest.raises(ContentError) as caught:
            attempt()
        assert words in str(caught.value) and str(tree) in str(caught.value)
        assert isinstance(caught.value, PkgcError) and caught.value.exit_code == 2
    assert not list((tmp_path / "trees").glob(".staging-*"))  # nothing half-written


@pytest.mark.parametrize("path", ["/", "/proc/self/environ", "/proc/self", "/dev/null", "/sys/kernel", "/dev/shm"])
def test_the_root_and_pseudo_filesystems_are_refused_as_a_class(path, tmp_path):
    with pytest.raises(ContentError, match="filesystem root|pseudo filesystem"):
        walk(Path(path))
    link = tmp_path / "innocent"
    os.symlink(path, link)  # the root may be a link, followed: its target decides
    with pytest.raises(ContentError):
        store_tree(link, tmp_path / "trees")


def test_a_model_path_that_links_to_a_regular_file_is_dereferenced(tmp_path):
    (tmp_path / "real.pkl").write_bytes(b"model")
    os.symlink("real.pkl", tmp_path / "model.pkl")
    digest = store_tree(tmp_path / "model.pkl", tmp_path / "trees")
    stored = tmp_path / "trees" / digest / "model.pkl"
    assert not stored.is_symlink() and stored.read_bytes() == b"model"


def test_a_file_that_grows_or_shrinks_while_read_is_refused(tmp_path):
    path = tmp_path / "growing"
    path.write_bytes(b"a" * 100)
    with pytest.raises(ContentError, match="changed size while being read"):
        with open_exact(path) as reader:
            reader.read(50)
            with open(path, "ab") as fh:
                fh.write(b"more")
            reader.read()
    with pytest.raises(ContentError, match="changed size while being read"):
        with open_exact(path) as reader:
            os.truncate(path, 10)
            reader.read()


def test_cli_refuses_special_files_in_one_line(tmp_path, workspace):
    proc = run_pkgc("model", "create", "--name", "secrets", "--path", "/proc/self/environ")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "pkgc: error: /proc/self/environ: is on a kernel pseudo filesystem (/proc, /sys, /dev), not package content"
    ]
    assert not (workspace / "models").exists()


def _writer(trees: Path) -> subprocess.Popen:
    """A real writer holding a staging folder (as store_tree does) until it is told to stop or killed."""
    code = (
        "import sys; from pathlib import Path; from compiler.workspace.trees import _staging\n"
        f"with _staging(Path({str(trees)!r})) as s:\n"
        "    (s / 'half-written').write_bytes(b'x')\n    print(s.name, flush=True)\n    sys.stdin.read()\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_stale_staging_is_removed_by_the_next_write_and_a_live_one_kept(tree, tmp_path):
    trees = tmp_path / "trees"
    trees.mkdir()
    killed, live = _writer(trees), _writer(trees)
    killed_name, live_name = killed.stdout.readline().strip(), live.stdout.readline().strip()
    killed.kill()
    killed.wait()
    old = trees / ".staging-abc123"  # an older pkgc's mkdtemp folder: no lock file at all
    (old / "model").mkdir(parents=True)
    (old / "model" / "f").write_bytes(b"x")
    (old / "model").chmod(0o555)
    try:
        assert (trees / killed_name).is_dir() and (trees / live_name).is_dir()
        store_tree(tree, trees)
        left = sorted(p.name for p in trees.iterdir())
        assert killed_name not in left and f"{killed_name}.lock" not in left and old.name not in left
        assert live_name in left and f"{live_name}.lock" in left
    finally:
        live.communicate("")
    assert sorted(p.name for p in trees.iterdir() if p.name.startswith(".")) == []  # the live writer cleaned up
    assert clean_stale_staging(trees) == []


def test_blobs_records_and_lock_files_get_the_umask_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        blob = tmp_path / "blobs" / store_blob(b"data", tmp_path / "blobs")
        ws = Workspace(tmp_path / "ws")
        (tmp_path / "m.pkl").write_bytes(b"m")
        ws.create_model("m", tmp_path / "m.pkl")
        record = tmp_path / "ws" / "models" / "m" / "1.json"
        lock_path = tmp_path / "package.conda-lock.yml"
        wheel = LockedPackage("six", "1.17.0", "pip", "https://files/six-1.17.0-py2.py3-none-any.whl",
                              "six-1.17.0-py2.py3-none-any.whl", "ab" * 32)  # fmt: skip
        write_lock(Lock("venv", "3.11", "cd" * 32, (wheel,)), lock_path, ["package.yml"])
        os.umask(0o077)
        private = tmp_path / "blobs" / store_blob(b"private", tmp_path / "blobs")
    finally:
        os.umask(previous)
    assert [oct(p.stat().st_mode & 0o777) for p in (blob, record, lock_path, private)] == ["0o644"] * 3 + ["0o600"]


def test_names_that_are_not_utf8_travel_byte_for_byte(tmp_path):
    root = tmp_path / "model"
    root.mkdir()
    raw = b"caf\xe9 [1] $x.bin"  # Latin-1, not UTF-8
    (root / os.fsdecode(raw)).write_bytes(b"v")
    digest = store_tree(root, tmp_path / "trees")
    assert os.listdir(os.fsencode(tmp_path / "trees" / digest / "model")) == [raw]
    out = io.BytesIO()
    write_context("FROM scratch\n", (ContextFile("model/content", source=root),), out)
    out.seek(0)
    with tarfile.open(fileobj=out, encoding="utf-8", errors="surrogateescape") as tar:
        assert os.fsencode(tar.getmember("model/content/" + os.fsdecode(raw)).name) == b"model/content/" + raw
