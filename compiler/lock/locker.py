"""Lock the chosen environment for each target platform, or reuse an existing lock file when it still
matches the spec for every one of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import LockError
from compiler.lock.lockfile import missing_platform, read_locks, write_lock
from compiler.lock.types import Lock, inputs_hash
from compiler.lock.wheel_tags import check_wheels
from compiler.platform import AMD64, Platform


@dataclass(frozen=True)
class LockResult:
    """One lock per requested platform (in the order asked), the file holding them, and what was done."""

    locks: dict[Platform, Lock]
    path: Path
    status: Literal["reused", "created", "relocked", "extended"]

    @property
    def lock(self) -> Lock:
        """The first requested platform's lock."""
        return next(iter(self.locks.values()))


def lock_environment(
    strategy: EnvironmentStrategy, cache_root: Path | None = None, log=lambda _msg: None, platform: Platform = AMD64
) -> Lock:
    """Resolve every package of ``strategy`` for ``platform`` to one file with a hash; with ``cache_root``
    (the pkgc cache), packages published only as source distributions are built into (pure-Python)
    wheels there."""
    if strategy.kind == "conda":
        from compiler.lock.conda_resolve import resolve_conda

        conda_packages = resolve_conda(strategy, platform=platform)
    else:
        conda_packages = []
    from compiler.lock.pip_resolve import resolve_pip  # the resolvers: only when a lock is made

    pip_packages = resolve_pip(list(strategy.pip), strategy.python, cache_root, log, glibc=strategy.glibc, platform=platform)
    lock = Lock(
        strategy=strategy.kind,
        python=strategy.python,
        inputs_hash=inputs_hash(strategy, platform),
        packages=tuple(conda_packages) + tuple(pip_packages),
        channels=strategy.channels,
        platform=platform,
    )
    check_wheels(lock, f"the lock for {platform}")
    return lock


def check_lock_matches(lock: Lock, strategy: EnvironmentStrategy, path: Path) -> None:
    if lock.inputs_hash != inputs_hash(strategy, lock.platform) or lock.strategy != strategy.kind:
        raise LockError(
            f"{path}: the lock no longer matches the spec (its inputs changed: {strategy.kind} environment with "
            f"{len(strategy.pip)} pip and {len(strategy.conda)} conda requirements); "
            "re-lock with 'pkgc lock' or 'pkgc build --relock'"
        )


def load_or_lock(
    strategy: EnvironmentStrategy,
    path: Path,
    relock: bool,
    sources: list[str],
    cache_root: Path | None = None,
    log=lambda _msg: None,
    memo_dir: Path | None = None,
    platforms: Sequence[Platform] = (AMD64,),
    extend: bool = True,
) -> LockResult:
    """Reuse the lock at ``path`` unless ``relock``; a stale lock (inputs changed) is an error, a missing
    one is made for every one of ``platforms``. A requested platform the lock lacks is locked and added
    to the file, the platforms already there kept as they are (``extend``; else an error, as for
    ``pkgc lock --check``). ``memo_dir`` keeps locks already read (``read_locks``). A relock writes
    exactly ``platforms``."""
    wanted = tuple(dict.fromkeys(platforms))
    if not wanted:
        raise ValueError("no platform to lock for")
    if path.exists() and not relock:
        found = read_locks(path, memo_dir)
        for platform in wanted:
            if platform in found:
                check_lock_matches(found[platform], strategy, path)
            elif not extend:
                raise LockError(missing_platform(path, platform, found))
        missing = [p for p in wanted if p not in found]
        if not missing:
            return LockResult({p: found[p] for p in wanted}, path, "reused")
        for platform in missing:
            log(f"locking for {platform} (the lock has {', '.join(map(str, found))})")
            found[platform] = lock_environment(strategy, cache_root, log, platform)
        write_lock(list(found.values()), path, sources)
        return LockResult({p: found[p] for p in wanted}, path, "extended")
    status = "relocked" if path.exists() else "created"
    locks = {}
    for platform in wanted:
        if len(wanted) > 1:
            log(f"locking for {platform}")
        locks[platform] = lock_environment(strategy, cache_root, log, platform)
    write_lock(list(locks.values()), path, sources)
    return LockResult(locks, path, status)
