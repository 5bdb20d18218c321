"""The pyc cache: what it gives back is, byte for byte and mode for mode, what compileall makes."""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
from pathlib import Path

from compiler.envbuild.bytecode import compile_site_packages

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
IN_IMAGE = f"/opt/pkgc/venv/lib/python{PYTHON}/site-packages"


def make_tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg" / "sub" / "mod.py").write_text("def f():\n    return __file__\n")
    (root / "pkg" / "tool.py").write_text("#!/usr/bin/env python\nprint('x')\n")
    (root / "pkg" / "tool.py").chmod(0o755)
    (root / "pkg" / "broken.py").write_text("def (:\n")
    (root / "pkg" / "tests" / "test_x.py").write_text("assert True\n")
    (root / "pkg" / "data.txt").write_text("not python\n")
    return root


def pycs(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777) for p in sorted(root.rglob("*.pyc"))}


def test_cached_pycs_equal_compileall_and_are_reused(tmp_path):
    reference = make_tree(tmp_path / "reference")
    compileall.compile_dir(str(reference), quiet=2, ddir=IN_IMAGE, rx=__import__("re").compile(r"/tests?/"),
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)  # fmt: skip
    cache = tmp_path / "cache"
    first = make_tree(tmp_path / "first")
    result = compile_site_packages(first, IN_IMAGE, PYTHON, workers=1, cache=cache)
    assert result.compiled and "0 of 4 files from the pyc cache" in result.note and "did not compile" in result.note
    second = make_tree(tmp_path / "second")
    again = compile_site_packages(second, IN_IMAGE, PYTHON, workers=1, cache=cache)
    assert "3 of 4 files from the pyc cache" in again.note  # broken.py has nothing to cache
    assert pycs(first) == pycs(second) == pycs(reference)
    assert set(pycs(first)) == {f"pkg/__pycache__/__init__.{sys.implementation.cache_tag}.pyc",
                                f"pkg/sub/__pycache__/mod.{sys.implementation.cache_tag}.pyc",
                                f"pkg/__pycache__/tool.{sys.implementation.cache_tag}.pyc"}  # fmt: skip


def test_the_key_holds_the_in_image_path(tmp_path):
    """The same source read from another place is another code object (co_filename): not reused."""
    cache = tmp_path / "cache"
    compile_site_packages(make_tree(tmp_path / "a"), IN_IMAGE, PYTHON, cache=cache)
    other = compile_site_packages(make_tree(tmp_path / "b"), "/opt/pkgc/env/lib/site-packages", PYTHON, cache=cache)
    assert "0 of 4 files from the pyc cache" in other.note
    shutil.rmtree(cache)
    assert compile_site_packages(make_tree(tmp_path / "c"), IN_IMAGE, PYTHON, cache=cache).compiled


def test_links_are_not_compiled_and_a_linked_pycache_is_not_written_through(tmp_path):
    """A conda package may hold links. A ``.py`` link reads the host's file here but the image's file
    there (its unchecked-hash pyc would run the host's code in the image), and a ``__pycache__`` link
    would have the pyc written wherever it points: neither is compiled, and nothing is written outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host_secret.py").write_text("TOKEN = 'the host s'\n")
    root = make_tree(tmp_path / "env")
    (root / "pkg" / "linked.py").symlink_to(outside / "host_secret.py")
    (root / "other").mkdir()
    (root / "other" / "mod.py").write_text("X = 1\n")
    (root / "other" / "__pycache__").symlink_to(outside)
    result = compile_site_packages(root, IN_IMAGE, PYTHON, workers=1, cache=tmp_path / "cache")
    assert result.compiled
    tag = sys.implementation.cache_tag
    assert f"pkg/__pycache__/linked.{tag}.pyc" not in pycs(root) and f"pkg/__pycache__/__init__.{tag}.pyc" in pycs(root)
    assert sorted(p.name for p in outside.iterdir()) == ["host_secret.py"]
