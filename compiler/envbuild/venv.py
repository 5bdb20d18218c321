"""Assemble the image's virtual environment on the host, rooted at its in-image prefix.

The locked, hash-checked wheels from the package cache are installed with pypa's ``installer``
(the library pip itself builds on) into a staging folder as if it were ``/``: scripts point at the
in-image interpreter, ``pyvenv.cfg`` names the base image's Python, and ``bin/python`` links to
the base's ``python3`` as ``python3 -m venv`` would."""

from __future__ import annotations

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


def assemble_venv(wheels: list[Path], target: VenvTarget, staging: Path) -> Path:
    """Install ``wheels`` (in the order given) under ``staging``; return the venv's staging folder."""
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
    for wheel in wheels:
        name = wheel.name.split("-", 1)[0]
        destination = SchemeDictionaryDestination(
            _scheme(target, name), interpreter=target.interpreter, script_kind="posix", destdir=str(staging)
        )
        try:
            with WheelFile.open(wheel) as source:
                install(source, destination, additional_metadata={"INSTALLER": b"pkgc\n"})
        except Exception as exc:  # installer raises InvalidWheelSource, FileExistsError, zip errors
            raise BuildError(f"installing {wheel.name} into the environment failed: {exc}") from None
    return root
