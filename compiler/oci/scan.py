"""Read what the OCI back end needs from a base image's layers: ``/etc/passwd``, ``/etc/group``
(the package user is appended to them), where its ``python3.X`` lives (the venv's home) and the
shared libraries its dynamic loader finds (to check the environment's needs at build time).

Scanned once per base manifest digest; the result is cached beside the store."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from isal import igzip

from compiler.envbuild.libraries import STANDARD_DIRS
from compiler.errors import BuildError
from compiler.oci.base import BaseImage
from compiler.oci.layer import GZIP_LAYER, TAR_LAYER
from compiler.oci.store import OciStore

WANTED = {"etc/passwd", "etc/group"}
PYTHON = re.compile(r"^(usr/local/bin|usr/bin|bin|opt/[^/]+/bin)/python(3\.\d+)$")
LIBRARY = re.compile(r"^(.+)/([^/]+\.so(\.[0-9]+)*)$")
LD_CONF = re.compile(r"^etc/ld\.so\.conf(\.d/[^/]+\.conf)?$")
SCAN_VERSION = 2


@dataclass(frozen=True)
class BaseScan:
    passwd: str = ""
    group: str = ""
    pythons: dict[str, str] = field(default_factory=dict)  # "3.11" -> "/usr/bin"
    libraries: tuple[str, ...] = ()  # file names of the shared libraries on the loader's path

    def python_home(self, python: str) -> str | None:
        return self.pythons.get(python)


def _members(store: OciStore, layer: dict):
    path = store.blobs.path(layer["digest"])
    media = layer.get("mediaType", "")
    if media in (GZIP_LAYER, "application/vnd.docker.image.rootfs.diff.tar.gzip"):
        fh = igzip.open(path, "rb")
    elif media in (TAR_LAYER, "application/vnd.docker.image.rootfs.diff.tar"):
        fh = open(path, "rb")
    else:
        raise BuildError(f"base image layer {layer['digest'][:19]} has media type {media!r}, which pkgc cannot read")
    with fh, tarfile.open(fileobj=fh, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            yield member, tar


def scan_base(store: OciStore, base: BaseImage) -> BaseScan:
    cache = store.root / "scans" / f"{base.manifest_digest.split(':', 1)[1]}.json"
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("version") == SCAN_VERSION:
            return BaseScan(data["passwd"], data["group"], data["pythons"], tuple(data["libraries"]))
    files: dict[str, str] = {}
    pythons: dict[str, str] = {}
    libraries: dict[str, set[str]] = {}  # folder -> library file names
    for layer in base.layers:
        for member, tar in _members(store, layer):
            name = member.name.lstrip("./").lstrip("/")
            folder, _, leaf = name.rpartition("/")
            if leaf.startswith(".wh."):
                files.pop(f"{folder}/{leaf[4:]}".lstrip("/"), None)
                continue
            if (name in WANTED or LD_CONF.match(name)) and member.isfile() and member.size <= 4 << 20:
                fh = tar.extractfile(member)
                files[name] = fh.read().decode("utf-8", "replace") if fh else ""
            library = LIBRARY.match(name)
            if library and (member.isfile() or member.issym()):
                libraries.setdefault(library.group(1), set()).add(library.group(2))
            match = PYTHON.match(name)
            if match and (member.isfile() or member.issym()):
                pythons.setdefault(match.group(2), "/" + match.group(1))
    folders = set(STANDARD_DIRS) | _configured_dirs(files)
    found = sorted({lib for folder, names in libraries.items() if folder in folders for lib in names})
    scan = BaseScan(files.get("etc/passwd", ""), files.get("etc/group", ""), pythons, tuple(found))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"version": SCAN_VERSION, **asdict(scan)}, sort_keys=True))
    return scan


def _configured_dirs(files: dict[str, str]) -> set[str]:
    """The folders ``/etc/ld.so.conf`` and its ``ld.so.conf.d`` files add to the loader's path."""
    folders = set()
    for name, text in files.items():
        if LD_CONF.match(name):
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("/"):
                    folders.add(line.strip("/"))
    return folders
