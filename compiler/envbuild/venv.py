"""Assemble the image's virtual environment on the host, rooted at its in-image prefix.

The locked, hash-checked wheels from the package cache are installed with pypa's ``installer``
(the library pip itself builds on) into a staging folder as if it were ``/``: scripts point at the
in-image interpreter, ``pyvenv.cfg`` names the base image's Python, and ``bin/python`` links to
the base's ``python3`` as ``python3 -m venv`` would. None of these depends on the machine: a venv for
another platform (arm64 from x86) is the same layout with that platform's wheels, unpacked without
tag checks (``installer``); the lock and the fetch check the wheels' tags against the target."""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from compiler.envbuild.notes import caught_notes, summary
from compiler.errors import BuildError


@dataclass(frozen=True)
class VenvTarget:
    """Where the venv lives in the image and which Python it runs on there."""

    prefix: str  # /opt/pkgc/venv
    python: str  # major.minor of the base image's interpreter
    python_home: str  # folder of the base's python3 (pyvenv.cfg 'home'), e.g. /usr/bin
    python_version: str = ""  # full version when known, for pyvenv.cfg
    system_site_packages: bool = False  # see the base interpreter's own packages (after the venv's)

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


def assemble_venv(
    wheels: list[Path], target: VenvTarget, staging: Path, workers: int = 1, log: Callable[[str], None] = lambda _msg: None
) -> Path:
    """Install ``wheels`` under ``staging`` (``workers`` processes); return the venv's staging folder."""
    root = venv_skeleton(target, staging)
    install_wheels(wheels, target, staging, workers, log)
    return root


def venv_skeleton(target: VenvTarget, staging: Path) -> Path:
    """What ``python3 -m venv --without-pip`` makes, under ``staging``; return the venv's staging folder."""
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
        f"home = {target.python_home}\ninclude-system-site-packages = {str(target.system_site_packages).lower()}\n"
        f"version = {version}\n"
        f"executable = {target.python_home.rstrip('/')}/python{target.python}\n"
        f"command = {base_python} -m venv {'--system-site-packages ' if target.system_site_packages else ''}{target.prefix}\n"
    )
    return root


def install_wheels(
    wheels: list[Path], target: VenvTarget, staging: Path, workers: int = 1,
    log: Callable[[str], None] = lambda _msg: None, overwrite: bool = False,
) -> None:
    """Install ``wheels`` into ``target``'s scheme under ``staging``; ``overwrite``: replace files
    already there (as pip does over a conda environment's files). The largest groups go first, so
    the biggest wheel (torch) is not left for last on a busy worker."""
    groups = sorted(install_groups(wheels, log), key=lambda g: -g.size)
    jobs = [(list(group.wheels), target, staging, overwrite or group.overwrite) for group in groups]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_install_group, jobs))
    else:
        results = list(map(_install_group, jobs))
    for line in summary([note for _failure, notes in results for note in notes], "the wheel installer"):
        log(line)
    failures = [failure for failure, _notes in results if failure]
    if failures:
        raise BuildError(failures[0])


class _Destination(SchemeDictionaryDestination):
    """installer's destination, safe beside other processes installing into the same tree: parent
    folders made as they may already be (two wheels' ``nvidia/`` at once), and never a write through
    a link out of the tree (the venv's ``bin/python`` points at the base's Python, which on the host
    may be any file or none; a conda package may hold a link to anywhere)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._root = os.path.realpath(self.destdir or "/")
        self._inside: set[str] = set()  # parent folders already found to be in the tree

    def write_to_fs(self, scheme, path, stream, is_executable):  # type: ignore[no-untyped-def]
        target = self._path_with_destdir(scheme, path)  # installer's own check of the path's text
        if target.is_symlink():
            raise FileExistsError(f"File already exists: {target} (a link the environment holds)")
        parent = str(target.parent)
        if parent not in self._inside:
            if os.path.commonpath([self._root, os.path.realpath(parent)]) != self._root:
                raise FileExistsError(f"{target}: its folder is a link out of the environment")
            self._inside.add(parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        return super().write_to_fs(scheme, path, stream, is_executable)


def _install_group(job: tuple[list[Path], VenvTarget, Path, bool]) -> tuple[str | None, list[str]]:
    """Install wheels that share files one after the other, in lock order; the error message (or None)
    and the installer's warnings as notes (the worker's stderr stays clean)."""
    wheels, target, staging, overwrite = job
    notes: list[str] = []
    for wheel in wheels:
        name = wheel.name.split("-", 1)[0]
        destination = _Destination(
            _scheme(target, name), interpreter=target.interpreter, script_kind="posix", destdir=str(staging),
            overwrite_existing=overwrite or len(wheels) > 1,
        )  # fmt: skip
        try:
            with caught_notes(notes), WheelFile.open(wheel) as source:
                install(source, destination, additional_metadata={"INSTALLER": b"pkgc\n"})
        except Exception as exc:  # installer raises InvalidWheelSource, FileExistsError, zip errors
            return f"installing {wheel.name} into the environment failed: {exc}", notes
    return None, notes


@dataclass(frozen=True)
class InstallGroup:
    """Wheels installed one after the other by one worker."""

    wheels: tuple[Path, ...]
    overwrite: bool  # they share a file with identical bytes with another group: either may write it
    size: int  # the wheels' bytes


def install_groups(wheels: list[Path], log: Callable[[str], None] = lambda _msg: None) -> list[InstallGroup]:
    """Wheels in groups that install in parallel, in lock order.

    Every wheel that installs a file one of them ships with other bytes (pkgutil-style namespace
    ``__init__.py`` files: opencensus and its extensions ship the same line, some with CRLF) goes in
    one group, even those whose copy is the first's, installed one after the other in lock order, so
    the last one's file is kept whatever the parallelism (pip also keeps the last). Wheels that share
    only files every copy of which has the same bytes (the twelve ``nvidia-*`` CUDA wheels' empty
    ``nvidia/__init__.py``: 1.8 GB that one worker installed alone) stay apart: whichever writes such
    a file last, the result is the same."""
    sharers: dict[str, list[int]] = {}  # path -> the wheels that ship it, in lock order
    first_bytes: dict[str, bytes] = {}  # path -> what the first of them ships (read once it is shared)
    differs: set[str] = set()  # paths some sharer ships with other bytes
    for index, wheel in enumerate(wheels):
        try:
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    name = info.filename
                    if name.endswith("/") or ".dist-info/" in name or ".data/" in name:
                        continue
                    if name not in sharers:
                        sharers[name] = [index]
                        continue
                    first = sharers[name][0]
                    if name not in first_bytes:
                        with zipfile.ZipFile(wheels[first]) as other:
                            first_bytes[name] = other.read(name)
                    if zf.read(name) != first_bytes[name]:
                        differs.add(name)
                        log(f"wheels {wheels[first].name} and {wheel.name} both install {name} with different bytes; "
                            f"{wheel.name}'s is kept (the later in lock order, as pip would)")  # fmt: skip
                    sharers[name].append(index)
        except (OSError, zipfile.BadZipFile) as exc:
            raise BuildError(f"{wheel}: not a readable wheel ({exc})") from None
    parent = list(range(len(wheels)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    identical: set[int] = set()
    for name, indices in sharers.items():
        if len(indices) < 2:
            continue
        if name in differs:  # every wheel that ships it, one group: the last in lock order writes last
            for index in indices[1:]:
                parent[root(index)] = root(indices[0])
        else:
            identical.update(indices)
    members: dict[int, list[int]] = {}
    for index in range(len(wheels)):
        members.setdefault(root(index), []).append(index)
    return [InstallGroup(tuple(wheels[i] for i in group), any(i in identical for i in group), sum(wheels[i].stat().st_size for i in group))
            for group in members.values()]  # fmt: skip
