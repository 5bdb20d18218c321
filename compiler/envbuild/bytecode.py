"""Byte-code for the host-assembled environment: compiled deterministically, or skipped.

``unchecked-hash`` pycs (PEP 552) carry the source's hash instead of its mtime and are never
re-validated, so they are reproducible and read as-is by the image's interpreter. They can only be
made by an interpreter of the image's major.minor; otherwise they are skipped with a note. Measured
on the sklearn example (bench/backends.py), `docker run` to the first 200 takes 1.1-2.0 s with
byte-code and 2.8-5.2 s without (every module compiled in memory at each start): compiled it is."""

from __future__ import annotations

import compileall
import py_compile
import re
import sys
from dataclasses import dataclass
from pathlib import Path


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


def compile_site_packages(folder: Path, in_image: str, python: str, workers: int = 1) -> BytecodeResult:
    """Compile every ``.py`` under ``folder`` (which sits at ``in_image`` in the image)."""
    if not host_can_compile(python):
        host = f"{sys.version_info.major}.{sys.version_info.minor}"
        return BytecodeResult(False, f"byte-code skipped: the host runs Python {host}, the image {python}")
    ok = compileall.compile_dir(
        str(folder), quiet=2, ddir=in_image, workers=workers, rx=_test_folders(folder),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )  # fmt: skip
    note = "byte-code compiled (unchecked-hash)" + ("" if ok else "; some files did not compile (left as source)")
    return BytecodeResult(True, note)
