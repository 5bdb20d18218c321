"""Wheels built on the host from packages published only as source distributions.

Each sdist is fetched by ``pip wheel`` with its sha256 checked and built once (the host's pip
configuration, build isolation, ``SOURCE_DATE_EPOCH`` fixed so the wheel's bytes are reproducible)
and kept in the pkgc cache under the sdist's sha256: ``<cache>/built/<sdist sha256>/<wheel>``.

Only pure-Python wheels (``py3-none-any`` and the like) are accepted: the host cannot compile C code
for the image's Python, glibc and machine (an arm64 image built on x86), so an sdist that builds a
platform-specific wheel stops the lock with a message saying so (decided: no "same Python on the
host" exception, because the image's system libraries and glibc may still differ from the host's). A pure wheel is platform-neutral: the same
wheel serves every target platform's lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import compatible_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from compiler.errors import LockError
from compiler.lock.types import SourceDist
from compiler.workspace.trees import file_sha256

SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest zip time stamp: rebuilds give the same bytes


@dataclass(frozen=True)
class BuiltWheel:
    """A wheel pkgc built from ``sdist``, in the cache."""

    path: Path
    sha256: str
    sdist: SourceDist

    @property
    def filename(self) -> str:
        return self.path.name


def _tail(text: str, lines: int = 4) -> str:
    kept = [l.strip() for l in text.strip().splitlines() if l.strip() and "is ignored: it is neither" not in l]
    return " | ".join(kept[-lines:])


def is_pure_for(wheel_filename: str, python: str) -> bool:
    """True when the wheel installs on CPython ``python`` (X.Y) of any platform (``py3-none-any``...)."""
    try:
        _, _, _, tags = parse_wheel_filename(wheel_filename)
    except InvalidWheelFilename:
        return False
    major, minor = (int(p) for p in python.split(".")[:2])
    return bool(tags & set(compatible_tags((major, minor), f"cp{major}{minor}", ["any"])))


def _build(name: str, version: str, sdist: SourceDist, out: Path) -> Path:
    """``pip wheel`` fetches the sdist by its hash (``--require-hashes``) and builds it, in one step."""
    req = out / "sdist.txt"
    req.write_text(f"{name}=={version} --hash=sha256:{sdist.sha256}\n")
    command = [
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--require-hashes", "--no-binary", name,
        "--quiet", "--disable-pip-version-check", "--wheel-dir", str(out / "wheel"), "-r", str(req),
    ]  # fmt: skip
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PYTHONHASHSEED="0")
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wheels = sorted((out / "wheel").glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise LockError(f"cannot build a wheel of {name} {version} from {sdist.filename}: {_tail(proc.stderr)}")
    return wheels[0]


def built_wheel(cache_root: Path, sdist: SourceDist) -> BuiltWheel | None:
    """The wheel already built from ``sdist`` (found by the sdist's sha256), or None."""
    folder = cache_root / "built" / sdist.sha256
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if len(wheels) != 1:
        return None
    return BuiltWheel(wheels[0], file_sha256(wheels[0]), sdist)


def build_wheel(
    name: str, version: str, sdist: SourceDist, python: str, cache_root: Path, log=lambda _msg: None
) -> BuiltWheel:
    """The pure-Python wheel of ``name`` ``version`` built from ``sdist``: from the cache, or built now."""
    cached = built_wheel(cache_root, sdist)
    if cached is None:
        log(f"building a wheel of {name} {version} from its source distribution {sdist.filename}")
        folder = cache_root / "built" / sdist.sha256
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="pkgc-sdist-", dir=folder.parent) as tmp:
            wheel = _build(name, version, sdist, Path(tmp))
            staged = Path(tmp) / "staged"
            staged.mkdir()
            shutil.move(wheel, staged / wheel.name)
            _refuse_unless_pure(name, version, sdist, wheel.name, python)
            try:
                os.rename(staged, folder)
            except OSError:  # built at the same time by another pkgc: keep theirs
                pass
        cached = built_wheel(cache_root, sdist)
        if cached is None:
            raise LockError(f"the wheel built from {sdist.filename} is missing from {folder}")
    _refuse_unless_pure(name, version, sdist, cached.filename, python)  # a wheel found in the cache, too
    return cached


def _refuse_unless_pure(name: str, version: str, sdist: SourceDist, wheel: str, python: str) -> None:
    """A wheel built on the host serves the image only when pure Python: never another machine's code."""
    if not is_pure_for(wheel, python):
        raise LockError(
            f"{name} {version} is published only as a source distribution ({sdist.filename}) and it "
            f"builds a platform-specific wheel ({wheel}); pkgc builds only pure-Python source "
            f"distributions on the host, as compiled code must match the image's Python {python}, "
            f"glibc and machine: require a version of {name} that publishes manylinux wheels"
        )
