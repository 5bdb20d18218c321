"""Read and write locks in conda-lock's file format, through the ``conda_lock`` package's models.

One file holds one lock per target platform, as conda-lock's own multi-platform files do:
``metadata.platforms`` (``linux-64``, ``linux-aarch64``), a ``metadata.content_hash`` per platform and
every package entry with its ``platform``. A linux-64-only lock is the same file it always was."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from typing import TYPE_CHECKING, Sequence

from compiler.errors import LockError
from compiler.lock import lock_memo
from compiler.lock.types import Lock, LockedPackage, SourceDist, filename_from_url
from compiler.lock.wheel_tags import check_wheels
from compiler.platform import Platform

if TYPE_CHECKING:  # conda-lock is imported only to write a lock or read one not read before (~0.5 s)
    from conda_lock.lockfile.v2prelim.models import Lockfile

MAX_LOCK_BYTES = 64 * 1024 * 1024
_META = "pkgc."
_BUILT = f"{_META}built-wheel."  # custom_metadata key per package built from a source distribution


def _entry_file(p: LockedPackage) -> tuple[str, str]:
    """(url, sha256) of a package's lock entry: for a wheel pkgc built, its source distribution, so
    conda-lock's own reader and installer see a real, hash-checked file."""
    return (p.sdist.url, p.sdist.sha256) if p.sdist else (p.url, p.sha256)


def _built_wheels(locks: list[Lock]) -> dict[str, str]:
    """``custom_metadata`` naming each wheel pkgc built from a source distribution: one key per package
    name (``pkgc.built-wheel.NAME``), which every platform shares (such a wheel is pure Python); a
    platform whose wheel differs gets its own (``pkgc.built-wheel.SUBDIR/NAME``: ``/`` is in no name)."""
    found: dict[str, str] = {}
    for lock in locks:
        for p in lock.packages:
            if p.sdist:
                value = f"{p.filename} sha256:{p.sha256}"
                key = f"{_BUILT}{p.name}"
                if found.setdefault(key, value) != value:
                    found[f"{_BUILT}{lock.platform.conda_subdir}/{p.name}"] = value
    return found


def _from_entry(p, built: dict[str, str], path: Path) -> LockedPackage:
    """A lock entry; a pip entry naming a source distribution with a built wheel in ``built`` is that wheel."""
    filename, sha256 = filename_from_url(p.url), p.hash.sha256 or ""
    wheel = built.get(p.name) if p.manager == "pip" and not filename.endswith(".whl") else None
    sdist = None
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


def _as_list(locks: Lock | Sequence[Lock]) -> list[Lock]:
    """One lock per platform, in platform order (linux-64 first); every one of one strategy and Python."""
    found = sorted([locks] if isinstance(locks, Lock) else list(locks), key=lambda lock: lock.platform)
    platforms = [lock.platform for lock in found]
    if not found or len(set(platforms)) != len(platforms):
        raise ValueError(f"one lock per platform is needed, got {', '.join(map(str, platforms)) or 'none'}")
    if len({(lock.strategy, lock.python, lock.channels) for lock in found}) != 1:
        raise ValueError("the locks of one file share their strategy, Python and channels")
    return found


def to_conda_lock(locks: Lock | Sequence[Lock], sources: list[str]) -> Lockfile:
    """conda-lock's model of ``locks`` (one per platform): each entry with its ``platform``, a
    ``content_hash`` per platform."""
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta

    found = _as_list(locks)
    packages = [
        LockedDependency(
            name=p.name,
            version=p.version,
            manager=p.manager,
            platform=lock.platform.conda_subdir,
            dependencies={},
            url=_entry_file(p)[0],
            hash=HashModel(sha256=_entry_file(p)[1], md5=p.md5),
            build=p.build,
            categories={"main"},
        )
        for lock in found
        for p in lock.packages
    ]
    first = found[0]
    meta = LockMeta(
        content_hash={lock.platform.conda_subdir: lock.inputs_hash for lock in found},
        channels=list(first.channels),
        platforms=[lock.platform.conda_subdir for lock in found],
        sources=sources,
        custom_metadata={f"{_META}strategy": first.strategy, f"{_META}python": first.python, **_built_wheels(found)},
    )
    return Lockfile(package=packages, metadata=meta)


def write_lock(locks: Lock | Sequence[Lock], path: Path, sources: list[str]) -> None:
    """Write ``locks`` (one per platform) as one file, atomically: a half-written lock file never
    replaces a good one."""
    from conda_lock.lockfile import write_conda_lock_file

    path.parent.mkdir(parents=True, exist_ok=True)
    # conda-lock creates the file itself: mode 0666 less the umask, like any new file (not mkstemp's 0600)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(8)}"
    try:
        write_conda_lock_file(to_conda_lock(locks, sources), Path(tmp), metadata_choices=set(), include_help_text=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_lock(path: Path, memo_dir: Path | None = None, platform: Platform | None = None) -> Lock:
    """The lock of ``platform`` (default: the file's first, linux-64 when it has it) in the file at
    ``path``; a file without that platform is an error naming it."""
    locks = read_locks(path, memo_dir)
    if platform is None:
        return next(iter(locks.values()))
    if platform not in locks:
        raise LockError(missing_platform(path, platform, locks))
    return locks[platform]


def missing_platform(path: Path, platform: Platform, locks: dict[Platform, Lock]) -> str:
    have = ", ".join(p.conda_subdir for p in locks)
    return (f"{path}: metadata.platforms: the lock has no {platform.conda_subdir} ({platform}), only {have}; "
            f"re-lock with 'pkgc lock' or 'pkgc build --relock'")  # fmt: skip


def read_locks(path: Path, memo_dir: Path | None = None) -> dict[Platform, Lock]:
    """Every platform's lock in the file at ``path``, in the file's order; with ``memo_dir``, a file
    read before (same bytes) is not parsed again."""
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
        return {lock.platform: lock for lock in known}
    locks = _parse(path, data)
    if memo is not None:
        lock_memo.remember(memo, locks)
    return {lock.platform: lock for lock in locks}


def _platforms(path: Path, named: list[str]) -> list[Platform]:
    """The platforms a lock file lists, by their conda subdirs (``linux-64``, ``linux-aarch64``)."""
    found = []
    for subdir in named:
        try:
            platform = Platform.parse(subdir)
        except ValueError as exc:
            raise LockError(f"{path}: metadata.platforms: {exc}") from None
        if platform.conda_subdir != subdir:
            raise LockError(f"{path}: metadata.platforms: '{subdir[:40]}' is not a conda subdir; expected {platform.conda_subdir}")
        found.append(platform)
    if not found or len(set(found)) != len(found):
        raise LockError(f"{path}: metadata.platforms: expected each platform once, got {named}")
    return found


def _parse(path: Path, data: bytes) -> list[Lock]:
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
    platforms = _platforms(path, list(lockfile.metadata.platforms))
    strays = sorted({p.platform for p in lockfile.package} - {p.conda_subdir for p in platforms})
    if strays:
        raise LockError(f"{path}: package entries for {strays[0]}, which metadata.platforms does not list")
    locks = []
    for platform in platforms:
        subdir = platform.conda_subdir
        mine = {name: value for name, value in built.items() if "/" not in name}
        mine.update({name.split("/", 1)[1]: value for name, value in built.items() if name.startswith(subdir + "/")})
        lock = Lock(
            strategy=strategy,
            python=custom.get(f"{_META}python", ""),
            inputs_hash=lockfile.metadata.content_hash.get(subdir, ""),
            packages=tuple(_from_entry(p, mine, path) for p in lockfile.package if p.platform == subdir),
            channels=tuple(c.url for c in lockfile.metadata.channels),
            platform=platform,
        )
        check_wheels(lock, str(path))
        locks.append(lock)
    return locks
