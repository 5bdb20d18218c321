"""Read and write locks in conda-lock's file format, through the ``conda_lock`` package's models."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from typing import TYPE_CHECKING

from compiler.errors import LockError
from compiler.lock import lock_memo
from compiler.lock.types import PLATFORM, Lock, LockedPackage, SourceDist, filename_from_url

if TYPE_CHECKING:  # conda-lock is imported only to write a lock or read one not read before (~0.5 s)
    from conda_lock.lockfile.v2prelim.models import Lockfile

MAX_LOCK_BYTES = 64 * 1024 * 1024
_META = "pkgc."
_BUILT = f"{_META}built-wheel."  # custom_metadata key per package built from a source distribution


def _entry_file(p: LockedPackage) -> tuple[str, str]:
    """(url, sha256) of a package's lock entry: for a wheel pkgc built, its source distribution, so
    conda-lock's own reader and installer see a real, hash-checked file."""
    return (p.sdist.url, p.sdist.sha256) if p.sdist else (p.url, p.sha256)


def _built_wheels(lock: Lock) -> dict[str, str]:
    return {f"{_BUILT}{p.name}": f"{p.filename} sha256:{p.sha256}" for p in lock.packages if p.sdist}


def _from_entry(p, built: dict[str, str], path: Path) -> LockedPackage:
    wheel = built.get(p.name) if p.manager == "pip" else None
    sdist = None
    filename, sha256 = filename_from_url(p.url), p.hash.sha256 or ""
    if wheel is not None:
        parts = wheel.split(" sha256:")
        if len(parts) != 2 or not parts[0].endswith(".whl") or "/" in parts[0] or len(parts[1]) != 64:
            raise LockError(
                f"{path}: metadata.custom_metadata.{_BUILT}{p.name}: expected '<wheel file> sha256:<64 hex>', "
                f"got '{wheel[:100]}'"
            )
        sdist = SourceDist(p.url, filename, sha256)
        filename, sha256 = parts
    return LockedPackage(
        name=p.name,
        version=p.version,
        manager=p.manager,
        url=p.url,
        filename=filename,
        sha256=sha256,
        md5=p.hash.md5,
        build=p.build,
        sdist=sdist,
    )


def to_conda_lock(lock: Lock, sources: list[str]) -> Lockfile:
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta

    packages = [
        LockedDependency(
            name=p.name,
            version=p.version,
            manager=p.manager,
            platform=PLATFORM,
            dependencies={},
            url=_entry_file(p)[0],
            hash=HashModel(sha256=_entry_file(p)[1], md5=p.md5),
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
        custom_metadata={f"{_META}strategy": lock.strategy, f"{_META}python": lock.python, **_built_wheels(lock)},
    )
    return Lockfile(package=packages, metadata=meta)


def write_lock(lock: Lock, path: Path, sources: list[str]) -> None:
    """Write atomically: a half-written lock file never replaces a good one."""
    from conda_lock.lockfile import write_conda_lock_file

    path.parent.mkdir(parents=True, exist_ok=True)
    # conda-lock creates the file itself: mode 0666 less the umask, like any new file (not mkstemp's 0600)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(8)}"
    try:
        write_conda_lock_file(to_conda_lock(lock, sources), Path(tmp), metadata_choices=set(), include_help_text=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_lock(path: Path, memo_dir: Path | None = None) -> Lock:
    """The lock file at ``path``; with ``memo_dir``, a file read before (same bytes) is not parsed again."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        raise LockError(f"{path}: lock file not found") from None
    except OSError as exc:
        raise LockError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_LOCK_BYTES:
        raise LockError(f"{path}: more than {MAX_LOCK_BYTES >> 20} MiB; not a lock file pkgc wrote")
    memo = lock_memo.memo_path(memo_dir, data) if memo_dir is not None else None
    if memo is not None and (known := lock_memo.recall(memo)) is not None:
        return known
    lock = _parse(path, data)
    if memo is not None:
        lock_memo.remember(memo, lock)
    return lock


def _parse(path: Path, data: bytes) -> Lock:
    """Parse exactly ``data`` (what was read from ``path``) with conda-lock's own reader."""
    import tempfile

    from conda_lock.lockfile import parse_conda_lock_file

    with tempfile.TemporaryDirectory(prefix="pkgc-lock-") as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(data)
        try:
            lockfile = parse_conda_lock_file(copy)
        except Exception as exc:  # conda_lock raises pydantic, yaml and its own errors
            raise LockError(f"{path}: not a valid conda-lock file: {str(exc).splitlines()[0]}") from None
    custom = lockfile.metadata.custom_metadata or {}
    strategy = custom.get(f"{_META}strategy")
    if strategy not in ("venv", "conda"):
        raise LockError(f"{path}: metadata.custom_metadata.{_META}strategy is missing; re-lock with 'pkgc lock'")
    built = {k.removeprefix(_BUILT): v for k, v in custom.items() if k.startswith(_BUILT)}
    packages = tuple(_from_entry(p, built, path) for p in lockfile.package if p.platform == PLATFORM)
    return Lock(
        strategy=strategy,
        python=custom.get(f"{_META}python", ""),
        inputs_hash=lockfile.metadata.content_hash.get(PLATFORM, ""),
        packages=packages,
        channels=tuple(c.url for c in lockfile.metadata.channels),
    )
