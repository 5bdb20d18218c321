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
from compiler.platform import AMD64, Platform

DEFAULT_GLIBC_MINOR = 28  # manylinux_2_28 .. manylinux_2_17: Debian 10+/Ubuntu 20.04+
MANYLINUX_RE = re.compile(r"manylinux_2_(\d+)_")  # of any machine


def glibc_minor(glibc: str | None) -> int:
    """The newest manylinux_2_N tag to accept: the base image's glibc when known and newer, else 2.28."""
    minor = int(glibc.split(".")[1]) if glibc else DEFAULT_GLIBC_MINOR
    return max(minor, DEFAULT_GLIBC_MINOR)


def newest_manylinux(filenames: list[str]) -> str | None:
    """The newest glibc the locked wheels need (``2.35``), so fetching accepts what locking chose."""
    minors = [int(m.group(1)) for name in filenames for m in MANYLINUX_RE.finditer(name)]
    return f"2.{max(minors)}" if minors else None


def platform_args(python: str, glibc: str | None = None, platform: Platform = AMD64) -> list[str]:
    """pip options that select wheels for CPython ``python`` on ``platform`` with ``glibc`` (default 2.28)."""
    nodot = python.replace(".", "")
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", f"cp{nodot}"]
    for tag in platform.manylinux_tags(glibc_minor(glibc)):
        args += ["--platform", tag]
    return args


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
    glibc: str | None = None, platform: Platform = AMD64,
) -> list[LockedPackage]:
    """Pin ``requirements`` and all their dependencies to one wheel each for ``platform``, with sha256 hashes.

    When wheels alone cannot satisfy them and ``cache_root`` is given, packages published only as
    source distributions are built into pure-Python wheels on the host (compiler/fetch/sdist.py) and
    offered to the resolver; those lock entries keep the sdist they were built from. ``glibc`` (the
    base image's, when its recipe states it) widens the manylinux wheels accepted. A wheel built from
    a source distribution is accepted only when it is pure Python (platform-neutral), whatever the target.
    """
    if not requirements:
        return []
    uv_said = ""
    if os.environ.get("PKGC_RESOLVER", "uv") != "pip":
        try:
            return resolve_with_uv(requirements, python, glibc_minor(glibc), platform=platform)
        except UvUnavailable as exc:
            log(f"resolving with pip: {exc}")
            uv_said = f"{exc}; "
    try:
        return _resolve_with_pip(requirements, python, cache_root, log, glibc, platform)
    except LockError as exc:  # one line: what uv said, then pip's last words
        raise LockError(f"{uv_said}{exc}"[:700]) from None


def _resolve_with_pip(
    requirements: list[str], python: str, cache_root: Path | None, log, glibc: str | None, platform: Platform
) -> list[LockedPackage]:
    """pip's resolver for the image's platform, source-only packages built into pure-Python wheels."""
    built: dict[str, BuiltWheel] = {}
    with tempfile.TemporaryDirectory(prefix="pkgc-resolve-") as name:
        tmp = Path(name)
        target = platform_args(python, glibc, platform)
        data, stderr = _dry_run(requirements, tmp, target)
        if data is None and cache_root is not None:
            sources = _source_only(requirements, tmp)
            if sources:
                links = tmp / "built"
                links.mkdir()
                for package, version, sdist in sources:
                    wheel = build_wheel(package, version, sdist, python, cache_root, log)
                    shutil.copyfile(wheel.path, links / wheel.filename)
                    built[wheel.filename] = wheel
                data, stderr = _dry_run(requirements, tmp, [*target, "--find-links", str(links)])
        if data is None:
            raise LockError(f"cannot resolve the pip requirements for Python {python} on {platform}: {_tail(stderr)}")
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
