"""Resolve pip requirements for the image's platform on the host: uv first (compiler/lock/uv_resolve.py,
about 1 s against pip's 6-8 s), pip's own resolver when uv cannot (no uv, source-only packages, a
failure: pip's message then names the user's conflict). ``PKGC_RESOLVER=pip`` skips uv.

Both run with the user's own pip configuration (index, proxy, CA), so a TLS-intercepting proxy is
handled on the host and never seen by the image build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compiler.errors import LockError
from compiler.fetch.sdist import BuiltWheel, build_wheel
from compiler.lock.types import LockedPackage, SourceDist, filename_from_url
from compiler.lock.uv_resolve import UvUnavailable, resolve_with_uv

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


def _tail(text: str, lines: int = 3) -> str:
    kept = [l.strip() for l in text.strip().splitlines() if l.strip() and "is ignored: it is neither" not in l]
    return " | ".join(kept[-lines:])[:400]


def _dry_run(requirements: list[str], tmp: Path, args: list[str]) -> tuple[dict | None, str]:
    """pip's resolver, installing nothing: (its report, or None on failure; its stderr)."""
    req_file = tmp / "requirements.in"
    req_file.write_text("\n".join(requirements) + "\n")
    report = tmp / "report.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
        "--disable-pip-version-check", "--report", str(report), "--target", str(tmp / "target"),
        *args, "-r", str(req_file),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0 or not report.exists():
        return None, proc.stderr
    return json.loads(report.read_text()), proc.stderr


def _sha256(item: dict) -> str:
    info = item["download_info"]
    archive = info.get("archive_info") or {}
    sha256 = (archive.get("hashes") or {}).get("sha256")
    if not sha256 and str(archive.get("hash", "")).startswith("sha256="):
        sha256 = archive["hash"].split("=", 1)[1]
    if not sha256:
        raise LockError(f"pip reported no sha256 for {info['url']}")
    return sha256


def _source_only(requirements: list[str], tmp: Path) -> list[tuple[str, str, SourceDist]]:
    """Which packages would come as source distributions: a resolve for the host, wheels preferred
    (so a package with wheels of an older version is not counted), sdists allowed. pip cannot
    resolve sdists for another platform; the image-platform resolve that follows has the last word."""
    data, _ = _dry_run(requirements, tmp, ["--prefer-binary"])
    found = []
    for item in (data or {}).get("install", []):
        url = item["download_info"]["url"]
        if not filename_from_url(url).endswith(".whl"):
            sdist = SourceDist(url, filename_from_url(url), _sha256(item))
            found.append((item["metadata"]["name"], item["metadata"]["version"], sdist))
    return found


def resolve_pip(
    requirements: list[str], python: str, cache_root: Path | None = None, log=lambda _msg: None,
    glibc: str | None = None,
) -> list[LockedPackage]:
    """Pin ``requirements`` and all their dependencies to one wheel each, with sha256 hashes.

    When wheels alone cannot satisfy them and ``cache_root`` is given, packages published only as
    source distributions are built into pure-Python wheels on the host (compiler/fetch/sdist.py) and
    offered to the resolver; those lock entries keep the sdist they were built from. ``glibc`` (the
    base image's, when its recipe states it) widens the manylinux wheels accepted.
    """
    if not requirements:
        return []
    uv_said = ""
    if os.environ.get("PKGC_RESOLVER", "uv") != "pip":
        try:
            return resolve_with_uv(requirements, python, glibc_minor(glibc))
        except UvUnavailable as exc:
            log(f"resolving with pip: {exc}")
            uv_said = f"{exc}; "
    try:
        return _resolve_with_pip(requirements, python, cache_root, log, glibc)
    except LockError as exc:  # one line: what uv said, then pip's last words
        raise LockError(f"{uv_said}{exc}"[:700]) from None


def _resolve_with_pip(
    requirements: list[str], python: str, cache_root: Path | None, log, glibc: str | None
) -> list[LockedPackage]:
    """pip's resolver for the image's platform, source-only packages built into pure-Python wheels."""
    built: dict[str, BuiltWheel] = {}
    with tempfile.TemporaryDirectory(prefix="pkgc-resolve-") as name:
        tmp = Path(name)
        data, stderr = _dry_run(requirements, tmp, platform_args(python, glibc))
        if data is None and cache_root is not None:
            sources = _source_only(requirements, tmp)
            if sources:
                links = tmp / "built"
                links.mkdir()
                for package, version, sdist in sources:
                    wheel = build_wheel(package, version, sdist, python, cache_root, log)
                    shutil.copyfile(wheel.path, links / wheel.filename)
                    built[wheel.filename] = wheel
                data, stderr = _dry_run(requirements, tmp, [*platform_args(python, glibc), "--find-links", str(links)])
        if data is None:
            raise LockError(f"cannot resolve the pip requirements for Python {python}: {_tail(stderr)}")
    packages = []
    for item in data.get("install", []):
        url = item["download_info"]["url"]
        wheel = built.get(filename_from_url(url)) if url.startswith("file:") else None
        packages.append(
            LockedPackage(
                name=item["metadata"]["name"],
                version=item["metadata"]["version"],
                manager="pip",
                url=wheel.sdist.url if wheel else url,
                filename=filename_from_url(url),
                sha256=wheel.sha256 if wheel else _sha256(item),
                sdist=wheel.sdist if wheel else None,
            )
        )
    return sorted(packages, key=lambda p: p.name.lower())
