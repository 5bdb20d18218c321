"""Byte-code for the host-assembled environment: compiled deterministically, or skipped.

``unchecked-hash`` pycs (PEP 552) carry the source's hash instead of its mtime and are never
re-validated, so they are reproducible and read as-is by the image's interpreter. They can only be
made by an interpreter of the image's major.minor; otherwise they are skipped with a note. Measured
on the sklearn example (bench/backends.py), `docker run` to the first 200 takes 1.1-2.0 s with
byte-code and 2.8-5.2 s without (every module compiled in memory at each start): compiled it is.

A pyc's bytes depend on its source, the path the image reads it from (its ``co_filename``), the
compiling interpreter's build (its magic number is not enough: CPython patch releases of one X.Y,
and even distribution patch levels of one release, compile some files differently) and what the
compiling process holds: marshal writes a string as a back-reference when the process holds it
elsewhere too (15 of email's 87 files differ between a fresh interpreter and one that imported pkgc).
So every compile runs ``DRIVER`` in a fresh process of the chosen interpreter (a ``Compiler``: the
host's own, ``HostCompiler``, or the base image's own ``python3.X``, ``compiler.backends.oci.base_python``,
which makes the byte-code the same on every runner whatever Python runs pkgc there), and compiled
files are kept in the host cache under that interpreter's identity (``<cache>/pyc``, as uv keeps
unpacked wheels) and copied on the next assembly, with the mode ``py_compile`` gives: the same bytes
whether compiled now or found."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
class Source:
    path: Path  # the .py file on the host
    in_image: str  # where the image reads it from: the code object's co_filename
    pyc: Path  # its __pycache__ file
    cached: Path | None  # its place in the pyc cache


def _sources(folder: Path, in_image: str, cache: Path | None, identity: bytes) -> list[Source]:
    """Every ``.py`` under ``folder`` outside test folders, as ``compileall.compile_dir`` finds them
    (folders followed unless links), but no link: on the host a link reads the host's file, in the
    image the image's (an unchecked-hash pyc of the one would run in place of the other), and a
    ``__pycache__`` that is a link would have the pyc written wherever it points."""
    skip = _test_folders(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(root, d)))
        if os.path.islink(os.path.join(root, "__pycache__")):
            continue
        for name in sorted(files):
            path = Path(root) / name
            if not name.endswith(".py") or skip.search(str(path)) or path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            cached = None
            if cache is not None:
                key = hashlib.sha256(b"\0".join([CACHE_FORMAT, identity, f"{in_image}/{rel}".encode(), path.read_bytes()])).hexdigest()
                cached = cache / key[:2] / key
            found.append(Source(path, f"{in_image}/{rel}", Path(importlib.util.cache_from_source(str(path))), cached))
    return found


def _mode(source: Path) -> int:
    """The mode py_compile gives a pyc: its source's, writable by the owner, never executable."""
    return (source.stat().st_mode | 0o200) & 0o666


# What every compiling interpreter runs, in a fresh process (``FLAGS``, ``ENV``): marshal writes a
# string as a back-reference when the process holds it elsewhere too, so a pyc's bytes depend on what
# the compiling process has loaded, not only on the interpreter's build. argv[1]: a JSON list of
# [source, path in the image]; out: one character per file ("1" compiled, "0" left as source).
DRIVER = """import importlib.util, json, py_compile, sys
done = []
for source, name in json.load(open(sys.argv[1])):
    try:
        py_compile.compile(source, cfile=importlib.util.cache_from_source(source), dfile=name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        done.append("1")
    except Exception:
        done.append("0")
sys.stdout.write("".join(done))
"""
FLAGS = ("-S", "-s", "-B")
ENV = {"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"}
TIMEOUT = 3600.0


class Compiler(ABC):
    """An interpreter that writes pycs; ``identity`` is what decides their bytes besides each source
    and its path in the image (it keys the pyc cache and the environment's layers)."""

    identity: bytes

    @abstractmethod
    def compile(self, sources: list[Source], workers: int) -> list[bool]:
        """Write each source's pyc; whether each compiled (one that does not is left as source)."""


def compile_in_shares(sources: list[Source], workers: int,
                      run: Callable[[int, list[Source]], subprocess.CompletedProcess]) -> list[bool]:  # fmt: skip
    """``run`` (the DRIVER in one fresh process) on ``workers`` shares of ``sources`` at once."""
    if not sources:
        return []
    shares = [sources[i :: max(1, workers)] for i in range(max(1, min(workers, len(sources))))]
    outputs: list[list[bool] | BaseException] = [[] for _ in shares]

    def one(index: int) -> None:
        try:
            done = run(index, shares[index])
            text = done.stdout.decode("ascii", "replace")
            if done.returncode != 0 or len(text) != len(shares[index]):
                detail = " ".join(done.stderr.decode("utf-8", "replace").split())[-300:]
                raise CompileFailed(f"the compiling Python exited {done.returncode}: {detail or 'no message'}")
            outputs[index] = [c == "1" for c in text]
        except subprocess.TimeoutExpired:
            outputs[index] = CompileFailed(f"the compiling Python took over {TIMEOUT:.0f} s")
        except BaseException as exc:  # raised in the caller's thread below
            outputs[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(shares))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done: list[bool] = [False] * len(sources)
    for index, result in enumerate(outputs):
        if isinstance(result, BaseException):
            raise result
        done[index :: len(shares)] = result
    return done


class ProcessCompiler(Compiler):
    """``python`` (default: the one running pkgc) as fresh processes, one per worker."""

    def __init__(self, python: str = sys.executable, identity: bytes = COMPILER):
        self.python, self.identity = python, identity

    def compile(self, sources: list[Source], workers: int) -> list[bool]:
        def run(_index: int, share: list[Source]) -> subprocess.CompletedProcess:
            with tempfile.NamedTemporaryFile("w", prefix="pkgc-compile-", suffix=".json") as listing:
                json.dump([[str(s.path), s.in_image] for s in share], listing)
                listing.flush()
                return subprocess.run([self.python, *FLAGS, "-c", DRIVER, listing.name], capture_output=True, env=ENV,
                                      timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip

        return compile_in_shares(sources, workers, run)


HostCompiler = ProcessCompiler  # the host's own Python


class CompileFailed(Exception):
    """The compiling interpreter could not run (not a source that does not compile)."""


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
    folder: Path, in_image: str, python: str, workers: int = 1, cache: Path | None = None, compiler: Compiler | None = None
) -> BytecodeResult:
    """Compile every ``.py`` under ``folder`` (which sits at ``in_image`` in the image) with
    ``compiler`` (default: the host's Python, when it is the image's ``python``); with ``cache``,
    reuse and keep what was compiled before."""
    if compiler is None and not host_can_compile(python):
        host = f"{sys.version_info.major}.{sys.version_info.minor}"
        return BytecodeResult(False, f"byte-code skipped: the host runs Python {host}, the image {python}")
    compiler = compiler or HostCompiler()
    missing = []
    sources = _sources(folder, in_image, cache, compiler.identity)
    for source in sources:
        if source.cached is not None and source.cached.is_file():
            source.pyc.parent.mkdir(exist_ok=True)
            shutil.copyfile(source.cached, source.pyc)
            os.chmod(source.pyc, _mode(source.path))
            mark_used(source.cached)  # pkgc cache prune --max-size evicts the least recently used
        else:
            missing.append(source)
    results = compiler.compile(missing, workers)
    for source, compiled in zip(missing, results):
        if compiled and source.cached is not None:
            _keep(source.pyc, source.cached)
    reused = len(sources) - len(missing)
    note = "byte-code compiled (unchecked-hash)" + (f", {reused} of {len(sources)} files from the pyc cache" if cache else "")
    return BytecodeResult(True, note + ("" if all(results) else "; some files did not compile (left as source)"))
