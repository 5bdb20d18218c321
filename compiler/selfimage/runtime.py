"""pkgc's own runtime in its image: its dependencies (``pyproject.toml``) locked by pkgc's locker,
fetched into the host cache, assembled as a venv on the host (``compiler.envbuild.venv``), and pkgc's
source installed into that venv, each as one deterministic layer.

The lock is kept beside the build script (``scripts/pkgc-image-lock.yml``) and made again only
when the dependencies change. The host's pip settings (index, proxy, CA) are used to lock and fetch
on the host only: the layers hold wheels' files, never a pip configuration or a CA."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import tomli

from compiler.cache.owner import staging_dir
from compiler.envbuild.bytecode import compile_site_packages
from compiler.envbuild.venv import VenvTarget, assemble_venv
from compiler.environment.strategy import EnvironmentStrategy
from compiler.errors import BuildError
from compiler.fetch.cache import PackageCache, fetch_lock
from compiler.lock.lockfile import read_lock, write_lock
from compiler.lock.locker import lock_environment
from compiler.lock.types import Lock, inputs_hash
from compiler.oci.compress import Compression, cache_key
from compiler.oci.layer import Entry, LayerBlob, staging_entries, write_layer
from compiler.oci.store import OciStore
from compiler.selfimage.records import read_record, write_record
from compiler.workspace.walk import skip_caches, walk

EXTRA = ("pip",)  # pkgc fetches missing wheels with `python -m pip download`
FORMAT = 1  # bump when these layers' rules change
SOURCE_TREES = (("compiler", "compiler"), ("templates", "compiler/_data/templates"),
                ("base-images", "compiler/_data/base-images"))  # (in the checkout, in site-packages), as the wheel has them  # fmt: skip
Log = Callable[[str], None]


@dataclass(frozen=True)
class Project:
    """pkgc's checkout: its name, version and runtime requirements (``[project]`` of pyproject.toml)."""

    root: Path
    name: str
    version: str
    requirements: tuple[str, ...]

    @classmethod
    def read(cls, root: Path) -> "Project":
        path = root / "pyproject.toml"
        try:
            project = tomli.loads(path.read_text(encoding="utf-8"))["project"]
            requirements = tuple(str(r) for r in project["dependencies"])
            return cls(root, str(project["name"]), str(project["version"]), requirements)
        except (OSError, KeyError, TypeError, tomli.TOMLDecodeError) as exc:
            raise BuildError(f"{path}: no [project] name, version and dependencies ({exc})") from None


def runtime_strategy(project: Project, python: str, glibc: str | None) -> EnvironmentStrategy:
    return EnvironmentStrategy("venv", python, f"{project.name}'s own runtime", pip=project.requirements + EXTRA, glibc=glibc)


def runtime_lock(strategy: EnvironmentStrategy, path: Path, cache_dir: Path, log: Log) -> tuple[Lock, str]:
    """The lock at ``path`` when it still matches ``strategy``, else a new one written there."""
    if path.is_file():
        lock = read_lock(path)
        if lock.inputs_hash == inputs_hash(strategy):
            return lock, "reused"
    lock = lock_environment(strategy, PackageCache(cache_dir).cache_root, log)
    write_lock(lock, path, ["pyproject.toml"])
    return lock, "created"


def venv_layer(
    store: OciStore, lock: Lock, cache_dir: Path, target: VenvTarget, epoch: int, compression: Compression, log: Log
) -> LayerBlob:
    """The venv holding ``lock``'s wheels at ``target.prefix``, byte-compiled; remembered by its inputs."""
    pins = sorted(p.pip_line for p in lock.packages)
    key = hashlib.sha256(json.dumps([FORMAT, pins, asdict(target), importlib.util.MAGIC_NUMBER.hex(), epoch,
                                     cache_key(compression)]).encode()).hexdigest()  # fmt: skip
    cached = read_record(store, f"selfimage-venv-{key}")
    if cached is not None:
        log(f"runtime venv layer reused: {cached.digest[:19]}")
        return cached
    fetched = fetch_lock(lock, PackageCache(cache_dir), log)
    wheels = [fetched.path_of(p) for p in lock.packages]
    with staging_dir(store.root, "pkgc-selfimage-") as staging:
        root = assemble_venv(wheels, target, staging, workers=2, log=log)
        note = compile_site_packages(staging / target.site_packages.lstrip("/"), target.site_packages, target.python,
                                     workers=2, cache=cache_dir / "pyc")  # fmt: skip
        log(f"runtime venv: {len(wheels)} wheels; {note.note}")
        blob = write_layer(staging_entries(root, target.prefix), store.blobs, epoch, compression=compression)
    write_record(store, f"selfimage-venv-{key}", blob)
    return blob


def launcher(target: VenvTarget) -> bytes:
    """``bin/pkgc``, as an installer writes a console script for ``pkgc = compiler.cli:entry``."""
    return (f"#!{target.interpreter}\nimport sys\nfrom compiler.cli import entry\n"
            "if __name__ == \"__main__\":\n    sys.exit(entry())\n").encode()  # fmt: skip


def source_layer(store: OciStore, project: Project, target: VenvTarget, epoch: int, compression: Compression, log: Log) -> LayerBlob:
    """pkgc's source in the venv's site-packages (templates and recipes under ``compiler/_data`` as
    in its wheel), byte-compiled, with its ``bin/pkgc`` launcher and its dist-info (name, version)."""
    with staging_dir(store.root, "pkgc-selfimage-") as staging:
        site = staging / target.site_packages.lstrip("/")
        for source, dest in SOURCE_TREES:
            for found in walk(project.root / source, ignore=skip_caches):
                path = site / dest / found.rel
                if found.is_dir:
                    path.mkdir(parents=True, exist_ok=True)
                else:
                    shutil.copyfile(found.path, path)
                    path.chmod(0o755 if found.executable else 0o644)
        info = site / f"{project.name}-{project.version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project.name}\nVersion: {project.version}\n")
        (info / "INSTALLER").write_text("pkgc\n")
        (info / "entry_points.txt").write_text("[console_scripts]\npkgc = compiler.cli:entry\n")
        note = compile_site_packages(site, target.site_packages, target.python)
        log(f"pkgc {project.version} source: {note.note}")
        entries = staging_entries(site, target.site_packages)[1:]  # site-packages itself is the venv layer's
        entries.append(Entry(f"{target.prefix}/bin/pkgc", "file", 0o755, data=launcher(target)))
        return write_layer(entries, store.blobs, epoch, compression=compression)
