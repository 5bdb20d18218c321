"""Solve the conda part of an environment for a target platform (``linux-64``, ``linux-aarch64``) with
py-rattler: no conda binary needed, whatever the host.

Specs arrive in pip syntax (``numpy==1.2.*``) and are turned into conda MatchSpecs
(``numpy 1.2.*``). The solve uses a fixed virtual-package set describing the image, never the host (``__archspec`` names
the target's machine).

When no channel carries a ``python`` package (a channel of noarch packages only), the environment
takes its Python from the base image: ``python`` (X.Y of the strategy) becomes a virtual package
for the solve, ``python`` and ``pip`` are left out of the lock, and the installer in the image
builds the environment on a virtual environment of the base image's Python (checking its X.Y).
"""

from __future__ import annotations

import asyncio
import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import LockError
from compiler.lock.types import LockedPackage
from compiler.platform import AMD64, Platform

if TYPE_CHECKING:
    from rattler import RepoDataRecord

SOLVE_TIMEOUT = datetime.timedelta(minutes=5)
# What the image offers to conda packages: glibc 2.28 matches the manylinux_2_28 floor pip locks
# for (Debian 10+, Ubuntu 20.04+); a generic CPU of the target's machine; a Linux 5.10 kernel.
VIRTUAL_PACKAGES = (
    ("__glibc", "2.28", "0"),
    ("__linux", "5.10", "0"),
    ("__unix", "0", "0"),
)
BASE_IMAGE_PACKAGES = ("python", "pip")  # provided by the base image when no channel has them
CHANNEL_ALIASES = {"defaults": ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")}

_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$")
_OPERATOR = re.compile(r"^(===|==|!=|~=|>=|<=|>|<|=)?(.*)$")


@dataclass(frozen=True)
class CondaSpec:
    """One requested conda package: its name and its version constraint in conda syntax."""

    name: str
    version: str

    @property
    def match_spec(self) -> str:
        return f"{self.name} {self.version}".strip()


def to_conda_spec(line: str) -> CondaSpec:
    """``numpy==1.2.*`` -> ``numpy 1.2.*``; ``pkg>=1,<2`` -> ``pkg >=1,<2``; ``python==3.11.4`` stays exact."""
    match = _NAME.match(line)
    if not match:
        raise LockError(f"conda requirement '{line}' has no package name")
    name, rest = match[1].lower(), match[2].strip()
    parts = []
    for part in filter(None, (p.strip().replace(" ", "") for p in rest.split(","))):
        op_match = _OPERATOR.match(part)
        if not op_match or not op_match[2]:
            raise LockError(f"conda requirement '{line}': cannot read version constraint '{part}'")
        op, version = op_match[1] or "==", op_match[2]
        if op in ("==", "===", "=") and version.endswith("*"):
            parts.append(version)
        elif op in ("===", "="):
            parts.append(f"=={version}" if op == "===" else f"{version}.*")
        else:
            parts.append(f"{op}{version}")
    return CondaSpec(name, ",".join(parts))


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    return (causes[-1] if causes else " ".join(lines))[:400] or type(exc).__name__


def _channel_urls(channels: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name as written, channel to query) for each channel, ``defaults`` expanded."""
    if not channels:
        raise LockError("the conda file names no channels; add a 'channels:' list (for example conda-forge)")
    return [(name, url) for name in channels for url in CHANNEL_ALIASES.get(name, (name,))]


def _locked(record: RepoDataRecord) -> LockedPackage:
    name = record.name.normalized
    if record.sha256 is None or record.md5 is None:
        raise LockError(
            f"channel {record.channel} gives no sha256/md5 for {record.file_name}; pkgc locks only hashed files"
        )
    return LockedPackage(
        name=name,
        version=str(record.version),
        manager="conda",
        url=record.url,
        filename=record.file_name,
        sha256=record.sha256.hex(),
        md5=record.md5.hex(),
        build=str(record.build),
    )


def subdirs(platform: Platform) -> tuple[str, str]:
    """The channel subdirs a target's packages come from: its own and ``noarch``."""
    return (platform.conda_subdir, "noarch")


def virtual_packages(platform: Platform) -> tuple[tuple[str, str, str], ...]:
    """(name, version, build) of the virtual packages the image offers the solve on ``platform``."""
    return (*VIRTUAL_PACKAGES, ("__archspec", "1", platform.machine))


async def _solve(strategy: EnvironmentStrategy, cache_dir: Path | None, platform: Platform) -> list[LockedPackage]:
    import rattler
    from rattler import BuildString, Channel, Gateway, GenericVirtualPackage, MatchSpec, PackageName, Version

    specs = [to_conda_spec(line) for line in strategy.conda]
    for spec in specs:
        try:
            MatchSpec(spec.match_spec)
        except Exception as exc:  # noqa: BLE001 - rattler raises many exception types; all end here
            raise LockError(
                f"conda requirement '{spec.match_spec}' is not a valid MatchSpec: {_one_line(exc)}"
            ) from None
    gateway = Gateway(cache_dir=cache_dir) if cache_dir else Gateway()
    channels = []
    provided: set[str] = set()
    for written, url in _channel_urls(strategy.channels):
        channel = Channel(url)
        try:
            found = await gateway.query([channel], subdirs(platform), list(BASE_IMAGE_PACKAGES), recursive=False)
        except Exception as exc:  # noqa: BLE001 - rattler raises many exception types; all end here
            where = "" if channel.base_url.rstrip("/") == written.rstrip("/") else f" ({channel.base_url})"
            raise LockError(f"cannot fetch conda channel '{written}'{where}: {_one_line(exc)}") from None
        provided.update(r.name.normalized for records in found for r in records)
        channels.append(channel)
    virtual = [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in virtual_packages(platform)]
    if "python" not in provided:
        specs = [s for s in specs if s.name not in BASE_IMAGE_PACKAGES or s.name in provided]
        virtual.append(
            GenericVirtualPackage(PackageName("python"), Version(strategy.python), BuildString("base_image"))
        )
    try:
        records = await rattler.solve(
            channels, [s.match_spec for s in specs], gateway=gateway, platforms=subdirs(platform),
            virtual_packages=virtual, timeout=SOLVE_TIMEOUT,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - rattler raises many exception types; all end here
        names = ", ".join(strategy.channels)
        raise LockError(
            f"cannot solve the conda packages {', '.join(strategy.conda)} from {names} for {platform.conda_subdir}: {_one_line(exc)}"
        ) from None
    return sorted((_locked(r) for r in records), key=lambda p: p.name)


def resolve_conda(
    strategy: EnvironmentStrategy, cache_dir: Path | None = None, platform: Platform = AMD64
) -> list[LockedPackage]:
    """Pin ``strategy.conda`` for ``platform`` from ``strategy.channels``: one file per package, with
    sha256 and md5. ``cache_dir`` holds fetched repodata (default: rattler's own cache)."""
    return asyncio.run(_solve(strategy, cache_dir, platform))
