"""Locks already read, by the sha256 of their bytes: parsing a lock file with conda-lock costs its
import (about 0.5 s of every build); a rebuild whose lock did not change takes the parsed lock from
here. A memo entry that is missing, unreadable or not what pkgc wrote is read again from the file."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict
from pathlib import Path

from compiler.lock.types import Lock, LockedPackage, SourceDist
from compiler.platform import SUPPORTED, Platform

FORMAT = 2  # 2: every platform's lock of the file
FOLDER = "locks-read"  # under pkgc's cache


def memo_path(memo_dir: Path, data: bytes) -> Path:
    """Where the lock whose file holds ``data`` is remembered."""
    return memo_dir / f"{hashlib.sha256(data).hexdigest()}.json"


def recall(path: Path) -> list[Lock] | None:
    """The locks (one per platform) remembered at ``path``, or None."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            return None
        return [_lock(item) for item in raw["locks"]] or None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _lock(raw: dict) -> Lock:
    packages = tuple(
        LockedPackage(**{**p, "sdist": SourceDist(**p["sdist"]) if p.get("sdist") else None}) for p in raw["packages"]
    )
    platform = Platform(**raw["platform"])
    if platform not in SUPPORTED:
        raise ValueError(f"platform {platform} is not one pkgc builds for")
    return Lock(raw["strategy"], raw["python"], raw["inputs_hash"], packages, tuple(raw["channels"]), platform)


def remember(path: Path, locks: list[Lock]) -> None:
    """Keep ``locks`` at ``path`` (written whole, then renamed); a failure only costs a later re-read."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}"
        tmp.write_text(json.dumps({"format": FORMAT, "locks": [asdict(lock) for lock in locks]}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
