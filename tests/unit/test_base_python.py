"""Who compiles the environment's byte-code (``compiler.backends.oci.base_python``): the base scan's
build digest of each ``python3.X`` (its executable and ``libpython``, a later layer's replacing or
whiting out an earlier's), the same digest computed for the Python running pkgc, and the choice made
from them: in this process when pkgc runs on the base's own Python, else in a chroot as root, else the
host's Python, said so. The chroot itself runs in tests/e2e (test_oci_backend, test_builder_image)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from compiler.backends.oci.base_python import _running_python_files, base_identity, host_build, make_compiler, plan_compiler
from compiler.backends.oci.scan import scan_base
from compiler.envbuild.bytecode import COMPILER, ProcessCompiler
from compiler.oci.base import BaseImage
from compiler.oci.layer import Entry, write_layer
from compiler.oci.store import CONFIG, MANIFEST, OciStore
from compiler.platform import ARM64, Platform

DEBIAN_PYTHON = Path("/usr/bin/python3.11")  # Debian's own, beside pyenv's on this machine


def base_of(store: OciStore, layers: list[list[Entry]]) -> BaseImage:
    blobs = [write_layer(entries, store.blobs) for entries in layers]
    config = {**Platform.host().oci(), "config": {}, "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in blobs]}}
    stored = store.put_json(config)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "layers": [b.descriptor() for b in blobs],
                "config": {"mediaType": CONFIG, "digest": stored.digest, "size": stored.size}}  # fmt: skip
    return BaseImage("test-base", store.put_json(manifest).digest, manifest, config, "store")


def test_the_scan_s_build_digest_is_the_one_of_the_same_files_on_the_host(tmp_path):
    if not DEBIAN_PYTHON.is_file():
        pytest.skip("Debian's /usr/bin/python3.11 is what the image holds here")
    store = OciStore(tmp_path / "store")
    base = base_of(store, [[Entry("usr/bin/python3.11", "file", 0o755, data=DEBIAN_PYTHON.read_bytes()),
                            Entry("usr/bin/python3", "symlink", target="python3.11")]])  # fmt: skip
    scan = scan_base(store, base)
    assert scan.python_builds["3.11"] == host_build([str(DEBIAN_PYTHON)])
    assert host_build([str(DEBIAN_PYTHON)]) != host_build([sys.executable]) or os.path.realpath(sys.executable) == str(DEBIAN_PYTHON)


def test_the_standard_library_is_part_of_the_build_its_site_folders_are_not(tmp_path):
    store = OciStore(tmp_path / "store")
    python = Entry("usr/bin/python3.11", "file", 0o755, data=b"\x7fELF")
    plain = scan_base(store, base_of(store, [[python, Entry("usr/lib/python3.11/py_compile.py", "file", data=b"# one")]]))
    changed = scan_base(store, base_of(store, [[python, Entry("usr/lib/python3.11/py_compile.py", "file", data=b"# two")]]))
    with_site = scan_base(store, base_of(store, [[python, Entry("usr/lib/python3.11/py_compile.py", "file", data=b"# one"),
                                                  Entry("usr/lib/python3.11/site-packages/x.py", "file", data=b"x"),
                                                  Entry("usr/lib/python3/dist-packages/y.py", "file", data=b"y")]]))  # fmt: skip
    assert plain.python_builds["3.11"] != changed.python_builds["3.11"]  # a changed py_compile compiles otherwise
    assert with_site.python_builds["3.11"] == plain.python_builds["3.11"]


def test_a_later_layer_replaces_or_removes_the_python_and_libpython(tmp_path):
    store = OciStore(tmp_path / "store")
    first = [Entry("usr/local/bin/python3.11", "file", 0o755, data=b"\x7fELF one"),
             Entry("usr/local/lib/libpython3.11.so.1.0", "file", data=b"lib one")]  # fmt: skip
    one = scan_base(store, base_of(store, [first])).python_builds["3.11"]
    replaced = scan_base(store, base_of(store, [first, [Entry("usr/local/lib/libpython3.11.so.1.0", "file", data=b"lib two")]]))
    removed = scan_base(store, base_of(store, [first, [Entry("usr/local/lib/.wh.libpython3.11.so.1.0", "file", data=b"")]]))
    again = scan_base(store, base_of(store, [first, [Entry("etc/motd", "file", data=b"hi")]]))
    assert len({one, replaced.python_builds["3.11"], removed.python_builds["3.11"]}) == 3
    assert again.python_builds["3.11"] == one  # nothing of Python changed: the same build


def test_the_choice_of_compiler(tmp_path, monkeypatch):
    store = OciStore(tmp_path / "store")
    running = os.path.realpath(sys.executable)
    if not running.startswith(("/usr/bin/", "/usr/local/bin/")) or not running.endswith("python3.11"):
        pytest.skip("the scan reads pythons at /usr/bin, /usr/local/bin, ...: this interpreter is elsewhere")
    entries = [Entry(p.lstrip("/"), "symlink", target=os.readlink(p)) if os.path.islink(p) else
               Entry(p.lstrip("/"), "file", 0o755, data=Path(p).read_bytes()) for p in _running_python_files()]  # fmt: skip
    same = base_of(store, [entries])  # this interpreter, its libpython and its standard library, as a base holds them
    scan = scan_base(store, same)
    choice = plan_compiler(scan, "3.11", Platform.host(), tmp_path / "cache", same)
    assert choice.identity == base_identity(scan.python_builds["3.11"], same.manifest_digest) and not choice.sandbox
    compiler = make_compiler(choice, store, same, Platform.host(), tmp_path / "cache", tmp_path, "/x")
    assert isinstance(compiler, ProcessCompiler) and compiler.identity == choice.identity != COMPILER


def test_another_python_compiles_in_a_chroot_as_root_else_the_host_s_says_so(tmp_path, monkeypatch):
    store = OciStore(tmp_path / "store")
    base = base_of(store, [[Entry("usr/bin/python3.11", "file", 0o755, data=b"\x7fELF another build")]])
    other = scan_base(store, base)
    as_root = plan_compiler(other, "3.11", Platform.host(), tmp_path / "cache", base)
    if os.geteuid() == 0 and shutil.which("unshare"):
        assert as_root.sandbox and as_root.identity == base_identity(other.python_builds["3.11"], base.manifest_digest)
        assert as_root.executable == "/usr/bin/python3.11"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    user = plan_compiler(other, "3.11", Platform.host(), tmp_path / "cache", base)
    assert user.identity is None and "a chroot needs root" in user.why and "digests depend on this host" in user.why
    none = plan_compiler(other, "3.12", ARM64, tmp_path / "cache", base)
    assert none.identity is None and "no python3.12" in none.why
    assert plan_compiler(other, "3.11", Platform.host(), tmp_path / "cache", None).identity is None  # no base to run


def test_a_python_outside_the_base_s_folder_is_not_hashed(tmp_path, monkeypatch):
    """Hashing the running Python (its standard library: 0.4 s) is every build's cost; a Python whose
    executable is not where the base has its own cannot be the base's build, so it is not hashed."""
    import compiler.backends.oci.base_python as base_python

    store = OciStore(tmp_path / "store")
    base = base_of(store, [[Entry("opt/elsewhere/bin/python3.11", "file", 0o755, data=b"\x7fELF another build")]])
    scan = scan_base(store, base)
    assert scan.python_home("3.11") == "/opt/elsewhere/bin" != os.path.dirname(os.path.realpath(sys.executable))
    hashed = []
    monkeypatch.setattr(base_python, "host_build", lambda *a: hashed.append(a) or "")
    choice = plan_compiler(scan, "3.11", Platform.host(), tmp_path / "cache", base)
    assert hashed == [] and choice.executable == "/opt/elsewhere/bin/python3.11"


def test_the_running_python_s_digest_is_kept_while_its_files_stay_as_they_are(tmp_path):
    """Debian's /usr/bin/python3 on a Debian base is hashed on every build (0.3 s); the digest is kept in
    the cache by its files' status, and any change to a file (same size, rewritten) hashes again."""
    from compiler.backends.oci.host_python import FOLDER, remembered_build, status_key

    python = tmp_path / "python3.11"
    python.write_bytes(b"\x7fELF one build")
    library = tmp_path / "os.py"
    library.write_text("# the standard library\n")
    files, cache, hashed = [str(python), str(library)], tmp_path / "cache", []

    def compute(paths):
        hashed.append(paths)
        return host_build(paths)

    first = remembered_build(files, compute, cache)
    assert first == host_build(files) and len(hashed) == 1
    assert remembered_build(files, compute, cache) == first and len(hashed) == 1  # kept: not hashed again
    [record] = (cache / FOLDER).iterdir()
    assert record.read_text() == first

    (tmp_path / "upgraded").write_bytes(b"\x7fELF two build")  # same size, other bytes, put in place as
    os.replace(tmp_path / "upgraded", python)  # a package manager does: another inode
    second = remembered_build(files, compute, cache)
    assert second == host_build(files) != first and len(hashed) == 2

    for record in (cache / FOLDER).iterdir():  # a record that is not a digest, or a link, is not believed
        record.unlink()
        os.symlink(library, record)
    assert remembered_build(files, compute, cache) == second and len(hashed) == 3
    current = cache / FOLDER / status_key(files)
    assert not current.is_symlink() and current.read_text() == second
    assert library.read_text() == "# the standard library\n"  # the link was replaced, not written through
    assert remembered_build(files, compute, None) == second and len(hashed) == 4  # no cache: hashed every time
