"""Read and write locks in conda-lock's file format, through the ``conda_lock`` package's models."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from conda_lock.lockfile import parse_conda_lock_file, write_conda_lock_file
from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta

from compiler.errors import LockError
from compiler.lock.types import PLATFORM, Lock, LockedPackage, filename_from_url

_META = "pkgc."


def to_conda_lock(lock: Lock, sources: list[str]) -> Lockfile:
    packages = [
        LockedDependency(
            name=p.name,
            version=p.version,
            manager=p.manager,
            platform=PLATFORM,
            dependencies={},
            url=p.url,
            hash=HashModel(sha256=p.sha256, md5=p.md5),
            build=p.build,
            categories={"main"},
        )
        for p in lock.packages
    ]
    meta = LockMeta(
        content_hash={PLATFORM: lock.inputs_hash},
        channels=list(lock.channels),
        platforms=[PLATFORM],
        sources=sources,
        custom_metadata={f"{_META}strategy": lock.strategy, f"{_META}python": lock.python},
    )
    return Lockfile(package=packages, metadata=meta)


def write_lock(lock: Lock, path: Path, sources: list[str]) -> None:
    """Write atomically: a half-written lock file never replaces a good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # conda-lock creates the file itself: mode 0666 less the umask, like any new file (not mkstemp's 0600)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(8)}"
    try:
        write_conda_lock_file(to_conda_lock(lock, sources), Path(tmp), metadata_choices=set(), include_help_text=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_lock(path: Path) -> Lock:
    try:
        lockfile = parse_conda_lock_file(path)
    except FileNotFoundError:
        raise LockError(f"{path}: lock file not found") from None
    except Exception as exc:  # conda_lock raises pydantic, yaml and its own errors
        raise LockError(f"{path}: not a valid conda-lock file: {str(exc).splitlines()[0]}") from None
    custom = lockfile.metadata.custom_metadata or {}
    strategy = custom.get(f"{_META}strategy")
    if strategy not in ("venv", "conda"):
        raise LockError(f"{path}: metadata.custom_metadata.{_META}strategy is missing; re-lock with 'pkgc lock'")
    packages = tuple(
        LockedPackage(
            name=p.name,
            version=p.version,
            manager=p.manager,
            url=p.url,
            filename=filename_from_url(p.url),
            sha256=p.hash.sha256 or "",
            md5=p.hash.md5,
            build=p.build,
        )
        for p in lockfile.package
        if p.platform == PLATFORM
    )
    return Lock(
        strategy=strategy,
        python=custom.get(f"{_META}python", ""),
        inputs_hash=lockfile.metadata.content_hash.get(PLATFORM, ""),
        packages=packages,
        channels=tuple(c.url for c in lockfile.metadata.channels),
    )
