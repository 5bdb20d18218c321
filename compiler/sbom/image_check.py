"""``pkgc verify``'s SBOM step: the image's SBOM has the digest its label states and matches the
image's own lock (/opt/pkgc/conda-lock.yml). Any mismatch is one VerifyError line (exit 4)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from compiler.engines.base import Engine
from compiler.errors import LockError, VerifyError
from compiler.lock.lockfile import read_lock
from compiler.platform import Platform
from compiler.sbom.check import SbomCheck, compare, summary
from compiler.sbom.image_files import FILE_LIMIT
from compiler.sbom.types import SBOM_IN_IMAGE, SBOM_LABEL

LOCK_IN_IMAGE = "/opt/pkgc/conda-lock.yml"


def _lock_of(image: str, data: bytes, platform: Platform | None = None):
    with tempfile.TemporaryDirectory(prefix="pkgc-lock-") as folder:
        path = Path(folder) / "conda-lock.yml"
        path.write_bytes(data)
        try:
            return read_lock(path, platform=platform)
        except LockError as exc:
            why = str(exc).replace(str(path), LOCK_IN_IMAGE)
            raise VerifyError(f"{image}: the image's lock cannot be read: {why}") from None


def check_image_sbom(engine: Engine, image: str, labels: Mapping[str, str], platform: Platform | None = None) -> SbomCheck:
    """Read the SBOM and the lock from ``image`` and compare them (the lock's part for ``platform``,
    default its first); raise VerifyError when they differ."""
    sbom = engine.read_file(image, SBOM_IN_IMAGE, FILE_LIMIT)
    if sbom is None:
        raise VerifyError(f"{image}: no SBOM at {SBOM_IN_IMAGE} (built by a pkgc without SBOMs? rebuild it)")
    lock_bytes = engine.read_file(image, LOCK_IN_IMAGE, FILE_LIMIT)
    if lock_bytes is None:
        raise VerifyError(f"{image}: no lock at {LOCK_IN_IMAGE} to check the SBOM against")
    result = compare(sbom, _lock_of(image, lock_bytes, platform))
    stated = labels.get(SBOM_LABEL)
    if stated != result.digest:
        raise VerifyError(f"{image}: {SBOM_IN_IMAGE} has digest {result.digest}, but label {SBOM_LABEL} states "
                          f"{str(stated)[:80] if stated else '(none)'}")  # fmt: skip
    if result.problems:
        raise VerifyError(f"{image}: the SBOM does not match the image's lock: {summary(result.problems)}")
    return result
