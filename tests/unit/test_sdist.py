"""Packages published only as source distributions: real pip builds of small local sdists (offered
through find-links, as an index would), the cache keyed by the sdist's sha256, the refusal of
compiled code, and the lock's round trip through conda-lock's own reader."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from conda_lock.lockfile import parse_conda_lock_file

from compiler.errors import BuildError, LockError
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.fetch.sdist import build_wheel, is_pure_for
from compiler.lock.lockfile import read_lock, write_lock
from compiler.lock.pip_resolve import resolve_pip
from compiler.lock.types import Lock, LockedPackage, SourceDist

PYTHON = "3.11"
PYPROJECT = b'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'


def make_sdist(folder: Path, name: str, setup_py: str, files: dict[str, bytes]) -> SourceDist:
    """A real sdist (tar.gz with PKG-INFO, pyproject.toml, setup.py) that pip can build."""
    root = f"{name}-1.0"
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        "pyproject.toml": PYPROJECT,
        "setup.py": setup_py.encode(),
        **files,
    }
    path = folder / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{root}/{member}")
            info.size, info.mtime = len(data), 315532800
            tar.addfile(info, io.BytesIO(data))
    return SourceDist(path.as_uri(), path.name, hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> dict[str, SourceDist]:
    folder = tmp_path_factory.mktemp("sdists")
    pure = make_sdist(
        folder, "pkgc-he-pure", "from setuptools import setup\nsetup(name='pkgc-he-pure', version='1.0', py_modules=['pkgc_he_pure'])\n",
        {"pkgc_he_pure.py": b"ANSWER = 42\n"},
    )  # fmt: skip
    cext = make_sdist(
        folder, "pkgc-he-cext",
        "from setuptools import Extension, setup\n"
        "setup(name='pkgc-he-cext', version='1.0', ext_modules=[Extension('pkgc_he_cext', ['cext.c'])])\n",
        {"cext.c": b'#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "pkgc_he_cext"};\n'
                   b"PyMODINIT_FUNC PyInit_pkgc_he_cext(void) { return PyModule_Create(&m); }\n"},
    )  # fmt: skip
    return {"folder": folder, "pure": pure, "cext": cext}


@pytest.fixture
def find_links(index, monkeypatch, tmp_path):
    """pip (run by pkgc as a subprocess, with the host's configuration) also sees the local sdists, with a
    cache of its own: pip's wheel cache keeps the source's hash by its URL, and a new pytest run (its
    temporary folders numbered from 0 again) can offer another sdist at an earlier run's path."""
    monkeypatch.setenv("PIP_FIND_LINKS", f"{os.environ.get('PIP_FIND_LINKS', '')} {index['folder']}".strip())
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))


@pytest.mark.parametrize(
    ("wheel", "pure"),
    [
        ("docopt-0.6.2-py2.py3-none-any.whl", True),
        ("x-1.0-py3-none-any.whl", True),
        ("x-1.0-cp311-none-any.whl", True),
        ("x-1.0-py2-none-any.whl", False),
        ("x-1.0-cp311-cp311-linux_x86_64.whl", False),
        ("x-1.0-cp312-none-any.whl", False),
        ("not-a-wheel.tar.gz", False),
    ],
)
def test_only_pure_python_wheels_for_the_image_python_count(wheel, pure):
    assert is_pure_for(wheel, PYTHON) is pure


def test_sdist_only_package_is_locked_as_a_built_wheel_and_fetched(index, find_links, tmp_path):
    messages: list[str] = []
    (locked,) = resolve_pip(["pkgc-he-pure==1.0"], PYTHON, tmp_path, messages.append)
    assert locked.filename == "pkgc_he_pure-1.0-py3-none-any.whl"
    assert locked.sdist == index["pure"] and locked.url == index["pure"].url
    built = tmp_path / "built" / index["pure"].sha256 / locked.filename
    assert hashlib.sha256(built.read_bytes()).hexdigest() == locked.sha256
    assert messages[0].startswith("resolving with pip: uv pip compile failed")  # uv locks wheels only
    assert messages[1:] == ["building a wheel of pkgc-he-pure 1.0 from its source distribution pkgc-he-pure-1.0.tar.gz"]
    again = build_wheel("pkgc-he-pure", "1.0", index["pure"], PYTHON, tmp_path, messages.append)
    assert again.sha256 == locked.sha256 and len(messages) == 2  # cached by the sdist's sha256: not rebuilt
    lock = Lock("venv", PYTHON, "x", (locked,))
    fetched = fetch_lock(lock, PackageCache(tmp_path))  # into files/<wheel sha256>/ for the image build
    assert fetched.path_of(locked) == tmp_path / "files" / locked.sha256 / locked.filename
    stale = LockedPackage(locked.name, "1.0", "pip", locked.url, locked.filename, "0" * 64, sdist=locked.sdist)
    with pytest.raises(BuildError, match=r"the lock pinned pkgc_he_pure-1\.0-py3-none-any\.whl with sha256 0{64}; re-lock"):
        fetch_lock(Lock("venv", PYTHON, "x", (stale,)), PackageCache(tmp_path))


def test_an_sdist_that_compiles_code_is_refused_clearly(index, find_links, tmp_path):
    with pytest.raises(LockError) as err:
        build_wheel("pkgc-he-cext", "1.0", index["cext"], PYTHON, tmp_path)
    message = str(err.value)
    assert message.startswith("pkgc-he-cext 1.0 is published only as a source distribution (pkgc-he-cext-1.0.tar.gz)")
    assert "platform-specific wheel (pkgc_he_cext-1.0-cp311-cp311-linux_x86_64.whl)" in message
    assert "pkgc builds only pure-Python source distributions" in message
    assert not any((tmp_path / "built").iterdir())  # nothing half-made is cached


def test_lock_keeps_both_hashes_and_conda_lock_reads_it(tmp_path):
    sdist = SourceDist("https://files.example/docopt-0.6.2.tar.gz", "docopt-0.6.2.tar.gz", "a" * 64)
    built = LockedPackage("docopt", "0.6.2", "pip", sdist.url, "docopt-0.6.2-py2.py3-none-any.whl", "b" * 64, sdist=sdist)
    plain = LockedPackage("six", "1.17.0", "pip", "https://files.example/six-1.17.0-py2.py3-none-any.whl",
                          "six-1.17.0-py2.py3-none-any.whl", "c" * 64)  # fmt: skip
    path = tmp_path / "x.conda-lock.yml"
    write_lock(Lock("venv", PYTHON, "h", (built, plain)), path, ["package.yml"])
    theirs = {p.name: p for p in parse_conda_lock_file(path).package}  # conda-lock's own reader
    assert theirs["docopt"].url == sdist.url and theirs["docopt"].hash.sha256 == "a" * 64
    assert parse_conda_lock_file(path).metadata.custom_metadata["pkgc.built-wheel.docopt"] == (
        f"docopt-0.6.2-py2.py3-none-any.whl sha256:{'b' * 64}"
    )
    assert read_lock(path).packages == (built, plain)
    path.write_text(path.read_text().replace(f"sha256:{'b' * 64}", "sha256:short"))
    with pytest.raises(LockError, match=r"custom_metadata\.pkgc\.built-wheel\.docopt: expected '<wheel file> sha256:<64 hex>'"):
        read_lock(path)
