"""Byte-code for the host-assembled environment: compiled deterministically, or skipped.

``unchecked-hash`` pycs (PEP 552) carry the source's hash instead of its mtime and are never
re-validated, so they are reproducible and read as-is by the image's interpreter. They can only be
made by an interpreter of the image's major.minor; otherwise they are skipped with a note. A pyc
holds no machine code, so the host's compile is right for every target platform (arm64 from x86). Measured
on the sklearn example (bench/backends.py), `docker run` to the first 200 takes 1.1-2.0 s with
byte-code and 2.8-5.2 s without (every module compiled in memory at each start): compiled it is.

Compiling is the longest step of assembling an environment (4.6 s of the MLflow iris package's
9.6 s of layers). A pyc depends only on its source bytes, the path the image reads it from (its
``co_filename``) and the compiling interpreter's build (its magic number is not enough: CPython patch
releases of one X.Y, and even distribution patch levels of one release, compile some files
differently); so compiled files are kept in the host cache under that key (``<cache>/pyc``, as uv keeps unpacked wheels) and copied on the next assembly, with
the mode ``py_compile`` gives: the same bytes whether compiled now or found."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import py_compile
import re
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from compiler.cache.owner import staging_name
from compiler.cache.lru import mark_used

CACHE_FORMAT = b"pkgc-pyc-1"

# what decides a pyc's bytes besides its source and path: the interpreter's build, not only its magic
# number (3.11.2 and 3.11.7 compile some files differently, and so do Debian's 3.11.2-6+deb12u6 and u9)
COMPILER = importlib.util.MAGIC_NUMBER + f" {sys.implementation.name} {sys.version}".encode()


@dataclass(frozen=True)
class BytecodeResult:
    compiled: bool
    note: str


def host_can_compile(python: str) -> bool:
    return f"{sys.version_info.major}.{sys.version_info.minor}" == python


def _test_folders(folder: Path) -> re.Pattern:
    """Packages' own test suites (``.../tests/...``, ``.../test/...``): a third of the example's
    sources, never imported by a server, so not compiled (Python would compile them in memory)."""
    return re.compile(re.escape(str(folder)) + r"/(?:.*/)?tests?/")


@dataclass(frozen=True)
class _Source:
    path: Path  # the .py file on the host
    in_image: str  # where the image reads it from: the code object's co_filename
    pyc: Path  # its __pycache__ file
    cached: Path | None  # its place in the pyc cache


def _sources(folder: Path, in_image: str, cache: Path | None) -> list[_Source]:
    """Every ``.py`` under ``folder`` outside test folders, as ``compileall.compile_dir`` finds them
    (folders followed unless links)."""
    skip = _test_folders(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            path = Path(root) / name
            if not name.endswith(".py") or skip.search(str(path)) or not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            cached = None
            if cache is not None:
                key = hashlib.sha256(b"\0".join([CACHE_FORMAT, COMPILER, f"{in_image}/{rel}".encode(), path.read_bytes()])).hexdigest()
                cached = cache / key[:2] / key
            found.append(_Source(path, f"{in_image}/{rel}", Path(importlib.util.cache_from_source(str(path))), cached))
    return found


def _mode(source: Path) -> int:
    """The mode py_compile gives a pyc: its source's, writable by the owner, never executable."""
    return (source.stat().st_mode | 0o200) & 0o666


def _compile(source: _Source) -> bool:
    try:
        py_compile.compile(str(source.path), cfile=str(source.pyc), dfile=source.in_image, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)  # fmt: skip
    except (py_compile.PyCompileError, SyntaxError, UnicodeError, ValueError, OSError):
        return False  # left as source, as compileall does
    if source.cached is not None:
        _keep(source.pyc, source.cached)
    return True


def _keep(pyc: Path, cached: Path) -> None:
    """Put a compiled file in the pyc cache, best effort: a cache that is full or read-only only
    means compiling again next time (the layer itself reports a full disk)."""
    tmp = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, prefix=staging_name(".partial-"), delete=False) as fh:
            tmp = fh.name
            fh.write(pyc.read_bytes())
        os.replace(tmp, cached)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def compile_site_packages(
    folder: Path, in_image: str, python: str, workers: int = 1, cache: Path | None = None
) -> BytecodeResult:
    """Compile every ``.py`` under ``folder`` (which sits at ``in_image`` in the image); with
    ``cache``, reuse and keep what was compiled before."""
    if not host_can_compile(python):
        host = f"{sys.version_info.major}.{sys.version_info.minor}"
        return BytecodeResult(False, f"byte-code skipped: the host runs Python {host}, the image {python}")
    missing = []
    sources = _sources(folder, in_image, cache)
    for source in sources:
        if source.cached is not None and source.cached.is_file():
            source.pyc.parent.mkdir(exist_ok=True)
            shutil.copyfile(source.cached, source.pyc)
            os.chmod(source.pyc, _mode(source.path))
            mark_used(source.cached)  # pkgc cache prune --max-size evicts the least recently used
        else:
            missing.append(source)
    if len(missing) > 50 and workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_compile, missing, chunksize=64))
    else:
        results = [_compile(source) for source in missing]
    reused = len(sources) - len(missing)
    note = "byte-code compiled (unchecked-hash)" + (f", {reused} of {len(sources)} files from the pyc cache" if cache else "")
    return BytecodeResult(True, note + ("" if all(results) else "; some files did not compile (left as source)"))
