"""Lock the chosen environment, or reuse an existing lock file when it still matches the spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import LockError
from compiler.lock.lockfile import read_lock, write_lock
from compiler.lock.pip_resolve import resolve_pip
from compiler.lock.types import Lock, inputs_hash


@dataclass(frozen=True)
class LockResult:
    lock: Lock
    path: Path
    status: Literal["reused", "created", "relocked"]


def lock_environment(strategy: EnvironmentStrategy, cache_root: Path | None = None, log=lambda _msg: None) -> Lock:
    """Resolve every package of ``strategy`` to one file with a hash; with ``cache_root`` (the pkgc
    cache), packages published only as source distributions are built into wheels there."""
    if strategy.kind == "conda":
        from compiler.lock.conda_resolve import resolve_conda

        conda_packages = resolve_conda(strategy)
    else:
        conda_packages = []
    pip_packages = resolve_pip(list(strategy.pip), strategy.python, cache_root, log, glibc=strategy.glibc)
    return Lock(
        strategy=strategy.kind,
        python=strategy.python,
        inputs_hash=inputs_hash(strategy),
        packages=tuple(conda_packages) + tuple(pip_packages),
        channels=strategy.channels,
    )


def check_lock_matches(lock: Lock, strategy: EnvironmentStrategy, path: Path) -> None:
    if lock.inputs_hash != inputs_hash(strategy) or lock.strategy != strategy.kind:
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
) -> LockResult:
    """Reuse the lock at ``path`` unless ``relock``; a stale lock is an error, a missing one is made.
    ``memo_dir`` keeps locks already read (``read_lock``)."""
    if path.exists() and not relock:
        lock = read_lock(path, memo_dir)
        check_lock_matches(lock, strategy, path)
        return LockResult(lock, path, "reused")
    status = "relocked" if path.exists() else "created"
    lock = lock_environment(strategy, cache_root, log)
    write_lock(lock, path, sources)
    return LockResult(lock, path, status)
