"""Resolve pip requirements for the image's platform on the host, with pip's own resolver.

pip runs with the user's own configuration (index, proxy, CA), so a TLS-intercepting proxy is
handled on the host and never seen by the image build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from compiler.errors import LockError
from compiler.lock.types import LockedPackage, filename_from_url

DEFAULT_GLIBC_MINOR = 28  # manylinux_2_28 .. manylinux_2_17: Debian 10+/Ubuntu 20.04+
MANYLINUX_RE = re.compile(r"manylinux_2_(\d+)_x86_64")


def glibc_minor(glibc: str | None) -> int:
    """The newest manylinux_2_N tag to accept: the base image's glibc when known and newer, else 2.28."""
    minor = int(glibc.split(".")[1]) if glibc else DEFAULT_GLIBC_MINOR
    return max(minor, DEFAULT_GLIBC_MINOR)


def newest_manylinux(filenames: list[str]) -> str | None:
    """The newest glibc the locked wheels need (``2.35``), so fetching accepts what locking chose."""
    minors = [int(m.group(1)) for name in filenames for m in MANYLINUX_RE.finditer(name)]
    return f"2.{max(minors)}" if minors else None


def platform_args(python: str, glibc: str | None = None) -> list[str]:
    """pip options that select wheels for CPython ``python`` on x86_64 Linux with ``glibc`` (default 2.28)."""
    nodot = python.replace(".", "")
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", f"cp{nodot}"]
    for minor in range(glibc_minor(glibc), 16, -1):
        args += ["--platform", f"manylinux_2_{minor}_x86_64"]
    return args + ["--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64"]


def _tail(text: str, lines: int = 6) -> str:
    kept = [l for l in text.strip().splitlines() if l.strip() and "is ignored: it is neither" not in l]
    return " | ".join(kept[-lines:])


def resolve_pip(requirements: list[str], python: str, glibc: str | None = None) -> list[LockedPackage]:
    """Pin ``requirements`` and all their dependencies to one wheel each, with sha256 hashes."""
    if not requirements:
        return []
    with tempfile.TemporaryDirectory(prefix="pkgc-resolve-") as tmp:
        req_file = Path(tmp) / "requirements.in"
        req_file.write_text("\n".join(requirements) + "\n")
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--disable-pip-version-check", "--report", str(report), "--target", str(Path(tmp) / "target"),
            *platform_args(python, glibc), "-r", str(req_file),
        ]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0 or not report.exists():
            raise LockError(f"cannot resolve the pip requirements for Python {python}: {_tail(proc.stderr)}")
        data = json.loads(report.read_text())
    packages = []
    for item in data.get("install", []):
        info = item["download_info"]
        archive = info.get("archive_info") or {}
        sha256 = (archive.get("hashes") or {}).get("sha256")
        if not sha256 and str(archive.get("hash", "")).startswith("sha256="):
            sha256 = archive["hash"].split("=", 1)[1]
        if not sha256:
            raise LockError(f"pip reported no sha256 for {info['url']}")
        packages.append(
            LockedPackage(
                name=item["metadata"]["name"],
                version=item["metadata"]["version"],
                manager="pip",
                url=info["url"],
                filename=filename_from_url(info["url"]),
                sha256=sha256,
            )
        )
    return sorted(packages, key=lambda p: p.name.lower())
