"""Before the plan, for the conda path: the locked package files laid out as a local channel (with
``repodata.json`` made from the package archives themselves) and the py-rattler wheel that runs the
installer inside the Dockerfile back end's builder stage (pinned by sha256, kept in the host cache).

All the conda path's I/O happens here, so planning stays pure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from compiler.errors import BuildError, LockError
from compiler.fetch.cache import FetchedFiles, PackageCache, fetch_lock
from compiler.lock.pip_resolve import resolve_pip
from compiler.lock.conda_resolve import subdirs
from compiler.lock.types import Lock, LockedPackage
from compiler.platform import AMD64, Platform
from compiler.plan.types import ContextFile

CHANNEL = "pkgc/channel"
INSTALLER_WHEELS = "pkgc/installer"
INSTALLER_PACKAGE = "py-rattler"
# py-rattler ships cp310-abi3 wheels: one wheel serves every CPython >= 3.10 a base image may have.
INSTALLER_PYTHON = "3.10"
_RECORD_ONLY = ("fn", "url", "channel")  # RepoDataRecord fields that are not repodata.json fields


@dataclass(frozen=True)
class CondaInputs:
    """What the conda environment's recipe copies: the channel and the installer's wheels."""

    channel: tuple[ContextFile, ...]
    installer: tuple[ContextFile, ...]


def prepare_conda_inputs(lock: Lock, fetched: FetchedFiles, cache: PackageCache) -> CondaInputs:
    """The channel of exactly the locked conda packages, and the installer wheels, for ``lock`` (its platform)."""
    return CondaInputs(tuple(channel_files(lock.of("conda"), fetched, lock.platform)), tuple(installer_files(cache, lock.platform)))


async def _records(paths: list[Path]) -> list[dict]:
    from rattler import RepoDataRecord

    records = await asyncio.gather(*(RepoDataRecord.from_package_archive(p) for p in paths))
    return [json.loads(r.to_json()) for r in records]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def channel_files(packages: tuple[LockedPackage, ...], fetched: FetchedFiles, platform: Platform = AMD64) -> list[ContextFile]:
    """The locked package files laid out as a channel for ``platform``, with repodata covering exactly them;
    a package of another platform's subdir is refused, naming it."""
    paths = [fetched.path_of(p) for p in packages]
    wanted = subdirs(platform)
    repodata: dict[str, dict[str, Any]] = {
        s: {"info": {"subdir": s}, "packages": {}, "packages.conda": {}, "repodata_version": 1} for s in wanted
    }
    files = []
    for package, path, record in zip(packages, paths, asyncio.run(_records(paths)) if paths else []):
        subdir = record.get("subdir")
        if subdir not in wanted:
            raise BuildError(f"conda package {package.filename} is for '{subdir}', not {platform.conda_subdir} ({platform})")
        if record.get("sha256") != package.sha256:
            raise BuildError(f"conda package {path} does not match the lock's sha256")
        entry = {k: v for k, v in record.items() if k not in _RECORD_ONLY and v is not None}
        entry["md5"] = package.md5 or _md5(path)
        key = "packages.conda" if package.filename.endswith(".conda") else "packages"
        repodata[subdir][key][package.filename] = entry
        files.append(ContextFile(f"{CHANNEL}/{subdir}/{package.filename}", source=path))
    for subdir, data in repodata.items():
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        files.append(ContextFile(f"{CHANNEL}/{subdir}/repodata.json", data=text.encode()))
    return files


def _installer_version() -> str:
    try:
        return version(INSTALLER_PACKAGE)
    except PackageNotFoundError:
        raise BuildError(
            f"the conda path needs {INSTALLER_PACKAGE} installed on the host (pip install {INSTALLER_PACKAGE})"
        ) from None


def _pin_installer(cache: PackageCache, wanted: str, platform: Platform = AMD64) -> list[LockedPackage]:
    """The installer wheels for ``platform`` with their sha256, resolved once from the index and remembered."""
    name = f"{INSTALLER_PACKAGE}-{wanted}-cp{INSTALLER_PYTHON.replace('.', '')}"
    pins = cache.root.parent / "pins" / f"{name}-{platform.conda_subdir}.json"
    if pins.is_file():
        return [LockedPackage(**item) for item in json.loads(pins.read_text())]
    try:
        packages = resolve_pip([f"{INSTALLER_PACKAGE}=={wanted}"], INSTALLER_PYTHON, platform=platform)
    except LockError as exc:
        raise BuildError(
            f"cannot find the {INSTALLER_PACKAGE} {wanted} wheel for the image's installer: {exc}"
        ) from None
    pins.parent.mkdir(parents=True, exist_ok=True)
    pins.write_text(json.dumps([asdict(p) for p in packages], indent=1) + "\n")
    return packages


def installer_files(cache: PackageCache, platform: Platform = AMD64) -> list[ContextFile]:
    """The py-rattler wheel(s) of the host's version for ``platform``, fetched into ``cache`` with their hashes."""
    packages = tuple(_pin_installer(cache, _installer_version(), platform))
    fetched = fetch_lock(Lock("venv", INSTALLER_PYTHON, "", packages, platform=platform), cache)
    files = [ContextFile(f"{INSTALLER_WHEELS}/{p.filename}", source=fetched.path_of(p)) for p in packages]
    requirements = "".join(f"{p.pip_line}\n" for p in packages)
    files.append(ContextFile(f"{INSTALLER_WHEELS}/requirements.txt", data=requirements.encode()))
    return files
