"""The base image's own Python compiling byte-code in a chroot of the base kept in the cache
(``compiler.backends.oci.base_python``), for real: the offline base's python3.11 writes pycs with
its own magic number that import on it; two runs sharing the kept root at once (each its own folder
bound in its own namespace) write exactly what one run alone writes; nothing of either is left in the
root. Needs root (the chroot), as pkgc does for it."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from compiler.backends.oci.base_python import SandboxCompiler, base_identity
from compiler.backends.oci.scan import scan_base
from compiler.envbuild.bytecode import compile_site_packages
from compiler.oci.base import resolve_base
from compiler.oci.store import OciStore
from compiler.platform import Platform

pytestmark = pytest.mark.engine
IN_IMAGE = "/opt/pkgc/venv/lib/python3.11/site-packages"
SOURCES = {"pkg/__init__.py": "from .mod import f\n", "pkg/mod.py": "def f(x):\n    return x in {'a', 'b', 'c'} and f'{x!r}'\n",
           "bad.py": "def broken(:\n"}  # fmt: skip


def tree(folder: Path) -> Path:
    for rel, text in SOURCES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def pycs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.pyc"))}


def test_the_base_s_python_compiles_in_a_chroot_and_runs_share_the_kept_root(engine, base_image, tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("the chroot needs root and util-linux's unshare")
    store = OciStore(tmp_path / "store")
    base = resolve_base(base_image, store, engine, lambda _m: None)
    scan = scan_base(store, base)
    identity = base_identity(scan.python_builds["3.11"], base.manifest_digest)

    def compiled(folder: Path, results: dict) -> None:
        compiler = SandboxCompiler(identity, store, base, Platform.host(), "/usr/bin/python3.11", tmp_path / "cache", folder, IN_IMAGE)
        try:
            results[folder.name] = compile_site_packages(folder, IN_IMAGE, "3.11", workers=2, compiler=compiler)
        finally:
            compiler.close()

    results: dict = {}
    compiled(tree(tmp_path / "alone"), results)
    runs = [threading.Thread(target=compiled, args=(tree(tmp_path / name), results)) for name in ("one", "two")]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    alone = pycs(tmp_path / "alone")
    assert set(alone) == {"pkg/__pycache__/__init__.cpython-311.pyc", "pkg/__pycache__/mod.cpython-311.pyc"}  # bad.py: left as source
    assert pycs(tmp_path / "one") == pycs(tmp_path / "two") == alone
    assert all(r.compiled and "did not compile" in r.note for r in results.values())
    kept = next((tmp_path / "cache" / "bases").iterdir()) / "root"
    assert not any(kept.joinpath(IN_IMAGE.lstrip("/")).iterdir())  # the runs' files were bound, not written there
    # the base's own interpreter reads them: run it on its pyc alone (the source removed), in the chroot
    (tmp_path / "alone" / "pkg" / "mod.py").unlink()
    os.replace(tmp_path / "alone/pkg/__pycache__/mod.cpython-311.pyc", tmp_path / "alone/pkg/mod.pyc")
    from compiler.runtime.qemu import Mount, QemuContainer

    with QemuContainer(store, base.manifest_digest, Platform.host(), tmp_path / "cache", network=False, kept=True) as box:
        done = box.run(["/usr/bin/python3.11", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import pkg; print(pkg.f('a'))", IN_IMAGE],
                       mounts=[Mount(tmp_path / "alone", IN_IMAGE)], user="0")  # fmt: skip
    assert done.returncode == 0 and done.stdout.decode().strip() == "'a'", done.stderr
