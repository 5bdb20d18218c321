"""Large models cost what changed: file digests remembered by stat facts, file contents held once in
the workspace (trees of hard links), model layers one per large file before the small files and
remembered by content, copy-mode model files at one path whatever the model's version, and locks
read once per content."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from compiler.lock import lock_memo
from compiler.lock.lockfile import read_lock, write_lock
from compiler.lock.types import Lock, LockedPackage
from compiler.oci.layer import Entry
from compiler.backends.oci.model_layers import MODEL_FILES, at_stable_path, model_layers, split_layers
from compiler.oci.store import OciStore
from compiler.workspace import trees
from compiler.workspace.digest_cache import MIN_SIZE, DigestCache
from compiler.workspace.store import Workspace

BIG = MIN_SIZE + 4096


def _aged(path: Path) -> Path:
    """A file written a while ago (outside the racy window), as a user's model usually is."""
    time.sleep(trees_racy_gap())
    return path


def trees_racy_gap() -> float:
    from compiler.workspace.digest_cache import RACY_S

    return RACY_S + 0.05


def _model(folder: Path, big: bytes = b"w" * BIG) -> Path:
    (folder / "model" / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "model" / "weights.bin").write_bytes(big)
    (folder / "model" / "sub" / "config.json").write_text('{"a": 1}')
    return folder / "model"


def test_digest_cache_knows_a_file_until_it_changes(tmp_path):
    cache = DigestCache(tmp_path / "d.sqlite")
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * BIG)
    st = path.stat()
    cache.remember(st, "ab" * 32, hashed_at=time.time())  # racy: written less than RACY_S ago
    assert cache.lookup(st) is None
    cache.remember(st, "ab" * 32, hashed_at=time.time() + trees_racy_gap())
    assert cache.lookup(path.stat()) == "ab" * 32
    with open(path, "r+b") as fh:  # same size, new content: mtime and ctime move
        fh.write(b"y")
    assert cache.lookup(path.stat()) is None
    small = tmp_path / "small"
    small.write_bytes(b"s")
    cache.remember(small.stat(), "cd" * 32, hashed_at=time.time() + 10)
    assert cache.lookup(small.stat()) is None  # small files are hashed, not looked up


def test_trusted_digest_survives_a_new_link_but_not_new_content(tmp_path):
    cache = DigestCache(tmp_path / "d.sqlite")
    held = tmp_path / "held"
    held.write_bytes(b"x" * BIG)
    cache.remember(held.stat(), "ef" * 32, hashed_at=0.0, trusted=True)
    os.link(held, tmp_path / "other-name")  # moves the ctime
    assert cache.lookup(held.stat()) == "ef" * 32
    os.utime(held, ns=(0, 0))
    assert cache.lookup(held.stat()) is None


def test_a_corrupt_digest_database_is_an_empty_one(tmp_path):
    (tmp_path / "d.sqlite").write_bytes(b"not a database" * 100)
    cache = DigestCache(tmp_path / "d.sqlite")
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * BIG)
    cache.remember(path.stat(), "ab" * 32, hashed_at=time.time() + 10)
    assert cache.lookup(path.stat()) is None
    source = _model(tmp_path / "m")
    digest = trees.store_tree(source, tmp_path / "ws" / "trees", cache)  # still stores, reading the files
    assert (tmp_path / "ws" / "trees" / digest / "model" / "weights.bin").read_bytes() == b"w" * BIG


def test_contents_are_held_once_and_a_known_file_is_not_read_again(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws", DigestCache(tmp_path / "cache" / "d.sqlite"))
    source = _model(tmp_path / "src")
    _aged(source / "weights.bin")
    first = ws.store_tree(source)
    (source / "notes.txt").write_text("one small file more")
    real_hash = trees._hash_content

    def hash_small_only(entry, out=None):
        assert os.stat(entry.path).st_size < MIN_SIZE, f"{entry.path} was read again"
        return real_hash(entry, out)

    monkeypatch.setattr(trees, "_hash_content", hash_small_only)
    second = ws.store_tree(source)
    assert second != first
    a, b = (ws.tree_path(d) / "model" / "weights.bin" for d in (first, second))
    assert os.path.samefile(a, b) and a.stat().st_nlink == 3  # the content file, linked into two trees
    assert oct(a.stat().st_mode & 0o777) == oct(0o444)
    assert (ws.tree_path(second) / "model" / "notes.txt").read_text() == "one small file more"
    assert ws.store_tree(source) == second  # known: found without storing again
    held = sorted(p.name for p in (ws.root / "files").iterdir())  # contents only: temporaries live in the staging folder
    assert len(held) == 3 and all(len(name) == 64 and int(name, 16) >= 0 for name in held)


def test_executable_and_plain_copies_of_one_content_are_two_files(tmp_path):
    source = tmp_path / "m"
    source.mkdir()
    (source / "run.sh").write_bytes(b"#!/bin/sh\n" + b"x" * BIG)
    (source / "data.sh").write_bytes(b"#!/bin/sh\n" + b"x" * BIG)
    (source / "run.sh").chmod(0o755)
    digest = trees.store_tree(source, tmp_path / "ws" / "trees")
    stored = tmp_path / "ws" / "trees" / digest / "m"
    assert (stored / "run.sh").stat().st_mode & 0o777 == 0o555 and (stored / "data.sh").stat().st_mode & 0o777 == 0o444
    assert not os.path.samefile(stored / "run.sh", stored / "data.sh")


def _entries(root: Path, dest: str) -> list[Entry]:
    found = []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        base = dest if rel == "." else f"{dest}/{rel}"
        found.append(Entry(base, "dir", 0o755))
        found += [Entry(f"{base}/{name}", "file", 0o644, source=Path(folder) / name) for name in sorted(files)]
    return found


def test_large_files_go_first_each_alone(tmp_path):
    source = _model(tmp_path)
    groups = split_layers(_entries(source, "m"), large=MIN_SIZE)
    assert [[e.path for e in g if e.kind == "file"] for g in groups] == [["m/weights.bin"], ["m/sub/config.json"]]


def test_a_new_model_version_keeps_its_large_layer_unread_and_unwritten(tmp_path, monkeypatch):
    store, cache = OciStore(tmp_path / "store"), DigestCache(tmp_path / "d.sqlite")
    ws = Workspace(tmp_path / "ws", cache)
    source = _model(tmp_path / "src")
    _aged(source / "weights.bin")
    v1 = ws.tree_path(ws.store_tree(source)) / "model"
    heard: list[bool] = []
    first = model_layers(at_stable_path(_entries(v1, "models/m/1/model"), "models/m/1"), store, 0, cache,
                         large=MIN_SIZE, on_layer=lambda _b, reused: heard.append(reused))  # fmt: skip
    (source / "notes.txt").write_text("v2")
    v2 = ws.tree_path(ws.store_tree(source)) / "model"
    real_sha256 = trees.file_sha256
    monkeypatch.setattr(trees, "file_sha256",
                        lambda p: pytest.fail(f"{p} was read again") if p.stat().st_size >= MIN_SIZE else real_sha256(p))
    second = model_layers(at_stable_path(_entries(v2, "models/m/2/model"), "models/m/2"), store, 0, cache,
                          large=MIN_SIZE, on_layer=lambda _b, reused: heard.append(reused))  # fmt: skip
    assert first[0] == second[0] and first[1] != second[1]  # the weights layer, then the small files
    assert heard == [False, False, True, False]
    import tarfile

    with tarfile.open(store.blobs.path(second[1].digest)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["models/m/2"].issym() and members["models/m/2"].linkname == f"/{MODEL_FILES}"
    assert f"{MODEL_FILES}/model/notes.txt" in members
    with tarfile.open(store.blobs.path(second[0].digest)) as tar:
        assert [m.name for m in tar.getmembers() if m.isfile()] == [f"{MODEL_FILES}/model/weights.bin"]


def test_a_remembered_layer_whose_blob_is_gone_is_written_again(tmp_path):
    store = OciStore(tmp_path / "store")
    source = _model(tmp_path / "src")
    entries = _entries(source, "m")
    first = model_layers(entries, store, 0, None, large=MIN_SIZE)
    os.chmod(store.blobs.path(first[0].digest), 0o644)
    store.blobs.path(first[0].digest).unlink()
    again = model_layers(entries, store, 0, None, large=MIN_SIZE)
    assert again == first and store.blobs.has(first[0].digest)


def _lock() -> Lock:
    pkg = LockedPackage("joblib", "1.6.0", "pip", "https://example.invalid/joblib-1.6.0-py3-none-any.whl",
                        "joblib-1.6.0-py3-none-any.whl", "ab" * 32)  # fmt: skip
    return Lock("venv", "3.11", "cd" * 32, (pkg,))


def test_a_lock_is_parsed_once_per_content(tmp_path, monkeypatch):
    path, memo = tmp_path / "p.conda-lock.yml", tmp_path / "memo"
    write_lock(_lock(), path, ["p.yml"])
    first = read_lock(path, memo)
    assert first == _lock() == read_lock(path)  # the memo gives what conda-lock's reader gives
    from compiler.lock import lockfile

    monkeypatch.setattr(lockfile, "_parse", lambda *_a: pytest.fail("parsed again"))
    assert read_lock(path, memo) == first
    monkeypatch.undo()
    path.write_text(path.read_text().replace("1.6.0", "1.6.1"))
    assert read_lock(path, memo).packages[0].version == "1.6.1"  # new bytes: parsed
    for entry in memo.iterdir():
        entry.write_text('{"format": 1, "packages": "no"}')  # damaged: read from the file again
    assert read_lock(path, memo).packages[0].version == "1.6.1"
    assert lock_memo.recall(memo / "missing.json") is None


def test_digest_database_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr("compiler.workspace.digest_cache.MAX_ROWS", 20)
    cache = DigestCache(tmp_path / "d.sqlite")
    path = tmp_path / "f"
    path.write_bytes(b"x" * BIG)
    st = path.stat()
    for i in range(60):
        fake = os.stat_result((st.st_mode, i + 1, st.st_dev, 1, 0, 0, BIG, 0, 0, 0))
        cache.remember(fake, f"{i:064x}", 0.0, trusted=True)
    cache.close()
    rows = sqlite3.connect(tmp_path / "d.sqlite").execute("SELECT COUNT(*) FROM digests").fetchone()[0]
    assert rows <= 20


def _tarfile_reference(entries, mtime: int) -> bytes:
    """The tar Python's tarfile writes for ``entries`` (stream mode, PAX), as pkgc's layers were written before."""
    import io
    import tarfile

    from compiler.oci import layer as layer_module

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in layer_module.normalise(entries):
            info = layer_module._tarinfo(entry, mtime)
            if entry.kind != "file":
                tar.addfile(info)
            elif entry.data is not None:
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                info.size = entry.source.stat().st_size
                with open(entry.source, "rb") as fh:
                    tar.addfile(info, fh)
    return out.getvalue()


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_layers_are_the_tars_tarfile_writes(tmp_path, compression):
    """pkgc's own tar writer (1 MiB blocks for compressed layers) writes exactly the bytes Python's
    tarfile writes: the same diff_id, whatever the compression. (A plain layer pads its large files'
    headers: tests/unit/test_aligned_layers.py.)"""
    import hashlib

    from compiler.oci.blobs import BlobStore
    from compiler.oci.compress import open_layer
    from compiler.oci.layer import write_layer

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (folder / "empty").write_bytes(b"")
    long_name = "d" * 120 + "-é.txt"  # a PAX header, a non-ASCII name
    (folder / long_name).write_text("x" * 511)
    entries = [
        Entry("m", "dir", 0o755), Entry("m/big.bin", "file", 0o644, source=folder / "big.bin"),
        Entry("m/empty", "file", 0o644, source=folder / "empty"), Entry(f"m/{long_name}", "file", 0o755, source=folder / long_name),
        Entry("m/given.txt", "file", 0o644, data=b"given" * 300), Entry("m/link", "symlink", 0o777, target="/opt/x"),
        *(Entry(f"m/small/{i:04d}.py", "file", 0o644, data=b"#" * i) for i in range(0, 3000, 7)),  # many writes below a block
    ]  # fmt: skip
    reference = _tarfile_reference(entries, 7)
    store = BlobStore(tmp_path / "store")
    layer = write_layer(entries, store, 7, compression=compression)
    assert layer.diff_id == "sha256:" + hashlib.sha256(reference).hexdigest()
    with open(store.path(layer.digest), "rb") as raw, open_layer(raw, layer.media_type) as tar:
        assert tar.read() == reference


def test_a_model_file_that_grows_while_it_is_layered_is_refused(tmp_path):
    from compiler.oci.blobs import BlobStore
    from compiler.oci.layer import write_layer
    from compiler.workspace.walk import ContentError

    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * BIG)
    entries = [Entry("m/w.bin", "file", 0o644, source=path)]
    real_copy = os.copy_file_range

    def grow_then_copy(src, dst, count, offset_src=None, offset_dst=None):
        with open(path, "ab") as fh:
            fh.write(b"more")
        return real_copy(src, dst, count, offset_src, offset_dst)

    import unittest.mock

    with unittest.mock.patch("os.copy_file_range", grow_then_copy), pytest.raises(ContentError, match="changed size"):
        write_layer(entries, BlobStore(tmp_path / "store"), compress=False)
    assert not [p for p in (tmp_path / "store").iterdir() if not p.name.startswith(".")]
