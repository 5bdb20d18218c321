"""Locked wheels checked against the lock's target: a wheel whose platform tags the target cannot run
(an ``x86_64`` wheel in a ``linux/arm64`` lock) never reaches its image."""

from __future__ import annotations

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from compiler.errors import LockError
from compiler.lock.types import Lock, LockedPackage
from compiler.platform import Platform


def wheel_platforms(filename: str) -> frozenset[str] | None:
    """The platform tags of a wheel file name (``any``, ``manylinux_2_17_aarch64`` ...), None when it
    is not a wheel's name."""
    if not filename.endswith(".whl"):
        return None
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return frozenset(tag.platform for tag in tags)


def runs_on(package: LockedPackage, platform: Platform) -> bool:
    """The package's wheel has a platform tag ``platform`` runs (a file that is not a wheel: not judged here)."""
    tags = wheel_platforms(package.filename)
    return tags is None or any(platform.accepts_wheel_platform(tag) for tag in tags)


def check_wheels(lock: Lock, where: str) -> None:
    """Refuse a lock holding a wheel its platform cannot run, naming the package (``where``: the file)."""
    for package in lock.of("pip"):
        if not runs_on(package, lock.platform):
            tags = ", ".join(sorted(wheel_platforms(package.filename) or ()))
            raise LockError(
                f"{where}: {package.name} {package.version}: the locked wheel {package.filename} is for {tags}, "
                f"which {lock.platform} cannot run; re-lock with 'pkgc lock'"
            )
