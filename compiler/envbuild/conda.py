"""Assemble the image's conda environment on the host, for its in-image prefix.

py-rattler (>= 0.28) links packages into one folder while patching another prefix into them:
``rattler.install(..., target_prefix=<staging>, alternative_target_prefix=/opt/pkgc/env)``. Text and
binary prefix placeholders, noarch python entry points (``#!/opt/pkgc/env/bin/python3.X``) and
``lib/pythonX.Y/site-packages`` all name the in-image prefix, so the folder is copied into the image as
it is. As in the Dockerfile back end (``templates/runtime/install_conda_env.py``): exactly the locked
package files (the fetch stage's, sha256-checked by it and by the plan), no solve, no download, no
link scripts; a lock without a conda ``python`` gets a venv of the base image's Python first and a
stand-in ``python`` record, never installed; then the lock's pip wheels go in with pypa's
``installer``. The ``conda-meta`` records name the lock's URLs and no host path, so equal locks
give equal bytes. The target platform (``linux-aarch64`` from an x86 host) only selects the lock's
entries and the subdir rattler links for: linking runs no code of the packages."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import unquote, urlparse

from compiler.cache.owner import staging_dir
from compiler.envbuild.notes import caught_notes, summary
from compiler.envbuild.venv import VenvTarget, install_wheels, venv_skeleton
from compiler.errors import BuildError
from compiler.platform import AMD64, Platform

# Written by rattler into conda-meta/*.json: host paths of its package cache (meaningless in the image).
_HOST_FIELDS = ("extracted_package_dir", "package_tarball_full_path", "link")


@dataclass(frozen=True)
class CondaPackageFile:
    """One locked conda package: its file on the host and the URL the lock names for it."""

    path: Path
    url: str
    sha256: str

    @property
    def file_name(self) -> str:
        return PurePosixPath(unquote(urlparse(self.url).path)).name


@dataclass(frozen=True)
class CondaTarget:
    """Where the environment lives in the image, and its Python (X.Y).

    ``python_home`` is the base image's Python folder when the lock has no conda ``python``
    (the environment is then a venv of it), else empty."""

    prefix: str
    python: str
    python_home: str = ""

    @property
    def scheme(self) -> VenvTarget:
        """The layout pip wheels install into (the same for a venv and a conda Python)."""
        return VenvTarget(self.prefix, self.python, self.python_home or f"{self.prefix}/bin")


def locked_packages(
    installer_lock: bytes, channel: dict[str, Path], platform: Platform = AMD64
) -> tuple[str, bool, list[CondaPackageFile]]:
    """The lock's Python (X.Y), whether it has a conda ``python``, and its conda packages for ``platform``
    with their files (``channel``: file name -> host path), from the plan's installer lock."""
    try:
        data = json.loads(installer_lock)
        python = str(data["metadata"].get("custom_metadata", {}).get("pkgc.python", ""))
        entries = [p for p in data["package"] if p["manager"] == "conda" and p["platform"] == platform.conda_subdir]
        packages = [CondaPackageFile(Path(), e["url"], e["hash"]["sha256"]) for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(f"the plan's conda lock is not conda-lock JSON ({exc})") from None
    missing = [p.file_name for p in packages if p.file_name not in channel]
    if missing:
        raise BuildError(f"the plan has no file for the locked conda package {missing[0]}")
    files = [CondaPackageFile(channel[p.file_name], p.url, p.sha256) for p in packages]
    return python, any(e["name"] == "python" for e in entries), files


async def _records(packages: list[CondaPackageFile], target: CondaTarget, platform: Platform) -> list:
    from rattler import BuildString, PackageRecord, RepoDataRecord

    records = list(await asyncio.gather(*(RepoDataRecord.from_package_archive(p.path) for p in packages)))
    for package, record in zip(packages, records):
        if record.sha256 is None or record.sha256.hex() != package.sha256:
            raise BuildError(f"conda package {package.path} does not match the lock's sha256")
    if target.python_home:  # tells rattler where noarch python goes and which interpreter its scripts use
        stand_in = PackageRecord(name="python", version=target.python, build=BuildString("base_image"),
                                 build_number=0, subdir=platform.conda_subdir)  # fmt: skip
        name = f"python-{target.python}-base_image.tar.bz2"
        records.append(RepoDataRecord(stand_in, name, f"file:///nonexistent/base-image/{name}", "file:///nonexistent/base-image/"))
    return records


async def _link(records: list, root: Path, target: CondaTarget, cache: Path, platform: Platform) -> None:
    import rattler

    await rattler.install(
        records, root, cache_dir=cache, ignored_packages={"python"} if target.python_home else None,
        platform=rattler.Subdir(platform.conda_subdir), execute_link_scripts=False, show_progress=False,
        alternative_target_prefix=target.prefix,
    )  # fmt: skip


def _channel_of(url: str) -> str:
    """``https://host/chan/linux-64/x.conda`` -> ``https://host/chan``."""
    return url.rsplit("/", 2)[0]


def normalise_conda_meta(root: Path, packages: list[CondaPackageFile]) -> None:
    """Rewrite ``conda-meta/*.json``: the lock's URL and channel instead of the host file's, and no
    host path of rattler's package cache."""
    by_name = {p.file_name: p for p in packages}
    for record_path in sorted((root / "conda-meta").glob("*.json")):
        record = json.loads(record_path.read_text())
        package = by_name.get(record.get("fn", ""))
        if package is not None:
            record["url"], record["channel"] = package.url, _channel_of(package.url)
        for key in _HOST_FIELDS:
            record.pop(key, None)
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        record_path.chmod(0o644)


def assemble_conda_env(
    packages: list[CondaPackageFile], wheels: list[Path], target: CondaTarget, staging: Path,
    workers: int = 1, log: Callable[[str], None] = lambda _msg: None, platform: Platform = AMD64,
) -> Path:
    """Link ``packages`` (of ``platform``) then install ``wheels`` under ``staging`` as if it were ``/``;
    return the environment's staging folder (``staging`` + ``target.prefix``)."""
    if target.python_home:
        root = venv_skeleton(target.scheme, staging)
    else:
        root = staging / target.prefix.lstrip("/")
        root.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with staging_dir(staging.parent, "pkgc-rattler-") as cache:
        try:
            with caught_notes(notes):  # rattler's warnings and log records: notes in the log, not raw stderr
                asyncio.run(_link(asyncio.run(_records(packages, target, platform)), root, target, Path(cache), platform))
        except BuildError:
            raise
        except Exception as exc:  # noqa: BLE001 - rattler's errors: linking, clobbering, broken archives
            detail = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise BuildError(f"rattler could not link the conda packages for {target.prefix}: {detail[:500]}") from None
    for line in summary(notes, "rattler"):
        log(line)
    normalise_conda_meta(root, packages)
    log(f"linked {len(packages)} conda packages for {target.prefix} on the host")
    install_wheels(wheels, target.scheme, staging, workers, log, overwrite=True)
    return root
