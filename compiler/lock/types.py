"""IR of the lock stage: every package pinned to one file with its hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlparse

from compiler.environment.strategy import EnvironmentStrategy
from compiler.platform import AMD64, Platform


@dataclass(frozen=True)
class SourceDist:
    """The source distribution a locked wheel was built from on the host (no wheel was published)."""

    url: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class LockedPackage:
    """One package pinned to the one file the image installs (``filename``, ``sha256``); for a wheel
    pkgc built from a source distribution, ``sdist`` says which (``url`` is then the sdist's)."""

    name: str
    version: str
    manager: Literal["conda", "pip"]
    url: str
    filename: str
    sha256: str
    md5: str | None = None
    build: str | None = None
    sdist: SourceDist | None = None

    @property
    def pip_line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class Lock:
    """A locked environment: strategy, Python, the inputs it was made from, and every package."""

    strategy: Literal["venv", "conda"]
    python: str
    inputs_hash: str
    packages: tuple[LockedPackage, ...]
    channels: tuple[str, ...] = ()
    platform: Platform = AMD64  # the target its files are for (conda-lock's ``platform``: linux-64, linux-aarch64)

    def of(self, manager: str) -> tuple[LockedPackage, ...]:
        return tuple(p for p in self.packages if p.manager == manager)


def filename_from_url(url: str) -> str:
    return unquote(PurePosixPath(urlparse(url).path).name)


def inputs_hash(strategy: EnvironmentStrategy, platform: Platform = AMD64) -> str:
    """A content hash of what was asked for on ``platform`` (sorted JSON), to tell when a lock has gone
    stale: conda-lock's ``metadata.content_hash`` of that platform's conda subdir."""
    payload = {
        "strategy": strategy.kind,
        "python": strategy.python,
        "pip": sorted(strategy.pip),
        "conda": sorted(strategy.conda),
        "channels": list(strategy.channels),
        "platform": platform.conda_subdir,
    }
    if strategy.glibc:  # only when a recipe states it, so every other lock keeps its hash
        payload["glibc"] = strategy.glibc
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
