"""Build a small local conda channel for tests: real ``.tar.bz2`` packages written here, with
``info/index.json``, ``info/paths.json`` (and ``info/link.json`` for noarch python entry points),
and a ``repodata.json`` per subdir (``linux-64`` and ``noarch``), as a conda indexer writes them.

No conda channel is reachable from the test machines, so the conda path is exercised against
packages made by the tests themselves.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from compiler.platform import Platform

SUBDIRS = ("linux-64", "noarch")


@dataclass(frozen=True)
class CondaPackage:
    """One package to write: ``files`` maps paths inside the package to their bytes.

    For ``noarch="python"`` packages, Python files live under ``site-packages/`` (the installer moves
    them to the environment's ``lib/pythonX.Y/site-packages``) and ``entry_points`` become scripts.
    """

    name: str
    version: str
    files: dict[str, bytes]
    build: str = "0"
    build_number: int = 0
    depends: tuple[str, ...] = ()
    noarch: Literal["python", "generic"] | None = None
    subdir: str = "noarch"
    entry_points: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"

    def index_json(self) -> dict:
        index: dict = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "license": "MIT",
            "subdir": self.subdir,
            "timestamp": 1700000000000,
        }
        if self.noarch:
            index["noarch"] = self.noarch
        else:
            index.update(arch=Platform.parse(self.subdir).machine, platform="linux")
        return index


@dataclass(frozen=True)
class Channel:
    """A channel folder and its ``file://`` URL; ``files`` maps each package file name to its path."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.root.resolve().as_uri()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _metadata(package: CondaPackage) -> dict[str, bytes]:
    paths = [
        {"_path": path, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(), "size_in_bytes": len(data)}
        for path, data in sorted(package.files.items())
    ]
    info = {
        "info/index.json": json.dumps(package.index_json(), indent=2).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2).encode(),
        "info/files": "".join(f"{p}\n" for p in sorted(package.files)).encode(),
    }
    if package.noarch == "python":
        link = {"noarch": {"type": "python", "entry_points": list(package.entry_points)}, "package_metadata_version": 1}
        info["info/link.json"] = json.dumps(link, indent=2).encode()
    return info


def write_package(subdir_dir: Path, package: CondaPackage) -> Path:
    """Write ``package`` as a ``.tar.bz2`` into ``subdir_dir``; the same package gives the same bytes."""
    subdir_dir.mkdir(parents=True, exist_ok=True)
    path = subdir_dir / package.filename
    with tarfile.open(path, "w:bz2") as tar:
        for name, data in sorted(_metadata(package).items()):
            _add(tar, name, data)
        for name, data in sorted(package.files.items()):
            _add(tar, name, data, 0o755 if name.startswith("bin/") else 0o644)
    return path


def _record(path: Path) -> dict:
    with tarfile.open(path, "r:bz2") as tar:
        member = tar.extractfile("info/index.json")
        assert member is not None
        index = json.loads(member.read())
    data = path.read_bytes()
    index.update(sha256=hashlib.sha256(data).hexdigest(), md5=hashlib.md5(data).hexdigest(), size=len(data))
    return index


def write_repodata(root: Path) -> None:
    """(Re)write ``repodata.json`` of every subdir from the package files in it."""
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for subdir in dict.fromkeys([*SUBDIRS, *present]):  # and any other platform's subdir written
        folder = root / subdir
        folder.mkdir(parents=True, exist_ok=True)
        packages = {p.name: _record(p) for p in sorted(folder.glob("*.tar.bz2"))}
        repodata = {"info": {"subdir": subdir}, "packages": packages, "packages.conda": {}, "repodata_version": 1}
        (folder / "repodata.json").write_text(json.dumps(repodata, indent=2, sort_keys=True))


def build_channel(root: Path, packages: list[CondaPackage]) -> Channel:
    """Write ``packages`` and the repodata of a channel at ``root``."""
    files = {p.filename: write_package(root / p.subdir, p) for p in packages}
    write_repodata(root)
    return Channel(root, files)


DEMO_MODULE = b'''"""pkgc-demo: a conda package made by pkgc's tests."""

from pathlib import Path

ORIGIN = "conda"


def data_file():
    import sys
    return Path(sys.prefix) / "share" / "pkgc-demo" / "greeting.txt"


def greeting():
    return data_file().read_text().strip()


def main():
    print(greeting())
'''


def _decoy_demo(version: str, origin: str) -> CondaPackage:
    """A pkgc-demo version outside ``==1.*``, whose module says where it came from."""
    return CondaPackage(
        name="pkgc-demo",
        version=version,
        build="pyh0_0",
        noarch="python",
        depends=("python >=3.8",),
        files={"site-packages/pkgc_demo/__init__.py": f"ORIGIN = {origin!r}\n".encode()},
    )


def demo_packages() -> list[CondaPackage]:
    """A noarch python package with an entry point that needs a noarch generic data package, and
    an older demo version the solver must not pick when ``==1.*`` is asked for."""
    data = CondaPackage(
        name="pkgc-demo-data",
        version="1.0",
        noarch="generic",
        files={"share/pkgc-demo/greeting.txt": b"hello from a conda package\n"},
    )
    demo = CondaPackage(
        name="pkgc-demo",
        version="1.2.0",
        build="pyh0_0",
        noarch="python",
        depends=("python >=3.8", "pkgc-demo-data 1.0.*"),
        files={"site-packages/pkgc_demo/__init__.py": DEMO_MODULE},
        entry_points=("pkgc-demo = pkgc_demo:main",),
    )
    decoys = [_decoy_demo(version, origin) for version, origin in (("0.9.0", "old"), ("2.0.0", "too new"))]
    return [data, demo, *decoys]
