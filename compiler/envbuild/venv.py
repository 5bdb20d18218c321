"""Assemble the image's virtual environment on the host, rooted at its in-image prefix.

The locked, hash-checked wheels from the package cache are installed with pypa's ``installer``
(the library pip itself builds on) into a staging folder as if it were ``/``: scripts point at the
in-image interpreter, ``pyvenv.cfg`` names the base image's Python, and ``bin/python`` links to
the base's ``python3`` as ``python3 -m venv`` would."""

from __future__ import annotations

import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from compiler.errors import BuildError


@dataclass(frozen=True)
class VenvTarget:
    """Where the venv lives in the image and which Python it runs on there."""

    prefix: str  # /opt/pkgc/venv
    python: str  # major.minor of the base image's interpreter
    python_home: str  # folder of the base's python3 (pyvenv.cfg 'home'), e.g. /usr/bin
    python_version: str = ""  # full version when known, for pyvenv.cfg

    @property
    def site_packages(self) -> str:
        return f"{self.prefix}/lib/python{self.python}/site-packages"

    @property
    def interpreter(self) -> str:
        return f"{self.prefix}/bin/python"


def _scheme(target: VenvTarget, name: str) -> dict[str, str]:
    return {
        "purelib": target.site_packages,
        "platlib": target.site_packages,
        "scripts": f"{target.prefix}/bin",
        "data": target.prefix,
        "headers": f"{target.prefix}/include/site/python{target.python}/{name}",
    }


def assemble_venv(wheels: list[Path], target: VenvTarget, staging: Path, workers: int = 1) -> Path:
    """Install ``wheels`` under ``staging`` (``workers`` processes); return the venv's staging folder."""
    root = staging / target.prefix.lstrip("/")
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "include").mkdir(exist_ok=True)
    Path(staging / target.site_packages.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / "lib64").symlink_to("lib")
    base_python = f"{target.python_home.rstrip('/')}/python3"
    (root / "bin" / "python").symlink_to(base_python)
    (root / "bin" / "python3").symlink_to("python")
    (root / "bin" / f"python{target.python}").symlink_to("python")
    version = target.python_version or target.python
    (root / "pyvenv.cfg").write_text(
        f"home = {target.python_home}\ninclude-system-site-packages = false\nversion = {version}\n"
        f"executable = {target.python_home.rstrip('/')}/python{target.python}\n"
        f"command = {base_python} -m venv {target.prefix}\n"
    )
    check_no_shared_files(wheels)
    jobs = [(wheel, target, staging) for wheel in wheels]
    if workers > 1 and len(wheels) > 1:
        with ProcessPoolExecutor(workers) as pool:
            failures = [f for f in pool.map(_install_one, jobs) if f]
    else:
        failures = [f for f in map(_install_one, jobs) if f]
    if failures:
        raise BuildError(failures[0])
    return root


def _install_one(job: tuple[Path, VenvTarget, Path]) -> str | None:
    """Install one wheel; the error message, or None (wheels share no file, so any order is the same)."""
    wheel, target, staging = job
    name = wheel.name.split("-", 1)[0]
    destination = SchemeDictionaryDestination(
        _scheme(target, name), interpreter=target.interpreter, script_kind="posix", destdir=str(staging)
    )
    try:
        with WheelFile.open(wheel) as source:
            install(source, destination, additional_metadata={"INSTALLER": b"pkgc\n"})
    except Exception as exc:  # installer raises InvalidWheelSource, FileExistsError, zip errors
        return f"installing {wheel.name} into the environment failed: {exc}"
    return None


def check_no_shared_files(wheels: list[Path]) -> None:
    """Two wheels installing the same file would make the result depend on install order (pip lets
    the last one win silently): refuse it, naming both."""
    owners: dict[str, str] = {}
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/") and ".dist-info/" not in n and ".data/" not in n]
        except (OSError, zipfile.BadZipFile) as exc:
            raise BuildError(f"{wheel}: not a readable wheel ({exc})") from None
        for name in names:
            if name in owners:
                raise BuildError(f"wheels {owners[name]} and {wheel.name} both install {name}; the environment "
                                 "would depend on install order")  # fmt: skip
            owners[name] = wheel.name
