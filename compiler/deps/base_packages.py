"""The base image's own Python packages against the lock: what the environment shadows, and which of
the base's packages the lock breaks.

A venv on a base whose interpreter already has packages sees them (``include-system-site-packages``),
as Azure ML's curated and custom-container images expect; the venv's own packages come first on
``sys.path``. So a package in both is the lock's at run time, and a base package whose requirement
the lock's version does not meet may fail to import: both are said at build time."""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compiler.lock.types import Lock
from compiler.plan.types import BasePackage


def conflicts(packages: tuple[BasePackage, ...], lock: Lock) -> list[str]:
    """One line per base package the lock shadows with another version, or whose requirement it breaks."""
    locked = {canonicalize_name(p.name): p.version for p in lock.of("pip")}
    lines = []
    for base in packages:
        mine = locked.get(canonicalize_name(base.name))
        if mine is not None and mine != base.version:
            lines.append(f"base image: {base.name} {base.version} ({base.site}) is shadowed by the lock's {base.name} {mine}")
    for base in packages:
        for text in base.requires:
            broken = _broken(text, locked, lock.python)
            if broken:
                lines.append(f"base image: {base.name} {base.version} requires {broken[0]}, but the lock installs "
                             f"{broken[1]} over it; {base.name} may fail to import")  # fmt: skip
    return lines


def _broken(text: str, locked: dict[str, str], python: str) -> tuple[str, str] | None:
    """(requirement, the lock's version) when the lock holds that package at a version it excludes."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": "", "python_version": python}):
        return None
    version = locked.get(canonicalize_name(requirement.name))
    if version is None or not requirement.specifier:
        return None
    try:
        if requirement.specifier.contains(Version(version), prereleases=True):
            return None
    except InvalidVersion:
        return None
    return f"{requirement.name}{requirement.specifier}", f"{requirement.name} {version}"
