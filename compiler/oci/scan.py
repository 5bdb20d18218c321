"""Read what the OCI back end needs from a base image's layers: ``/etc/passwd``, ``/etc/group``
(the package user is appended to them) and where its ``python3.X`` lives (the venv's home).

Scanned once per base manifest digest; the result is cached beside the store."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from isal import igzip
from isal.igzip_lib import IsalError

from compiler.errors import BuildError, ResolveError
from compiler.oci.base import BaseImage
from compiler.oci.layer import GZIP_LAYER, TAR_LAYER
from compiler.oci.store import OciStore

WANTED = {"etc/passwd", "etc/group"}
PYTHON = re.compile(r"^(usr/local/bin|usr/bin|bin|opt/[^/]+/bin)/python(3\.\d+)$")
SCAN_VERSION = 1
FILE_LIMIT = 4 << 20  # /etc/passwd, /etc/group: larger is not a base image pkgc builds on


@dataclass(frozen=True)
class BaseScan:
    passwd: str = ""
    group: str = ""
    pythons: dict[str, str] = field(default_factory=dict)  # "3.11" -> "/usr/bin"

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
            return BaseScan(data["passwd"], data["group"], data["pythons"])
    files: dict[str, str] = {}
    pythons: dict[str, str] = {}
    for layer in base.layers:
        try:
            _scan_layer(store, layer, files, pythons)
        except (OSError, EOFError, tarfile.TarError, IsalError) as exc:  # the layer's digest held: its bytes are the image's
            raise ResolveError(f"base image layer {layer['digest'][:19]} is not a readable layer: {exc}") from None
    scan = BaseScan(files.get("etc/passwd", ""), files.get("etc/group", ""), pythons)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"version": SCAN_VERSION, **asdict(scan)}, sort_keys=True))
    return scan


def _scan_layer(store: OciStore, layer: dict, files: dict[str, str], pythons: dict[str, str]) -> None:
    """Note the wanted files and the pythons of one layer (a later layer's replace an earlier's)."""
    for member, tar in _members(store, layer):
        name = member.name.lstrip("./").lstrip("/")
        folder, _, leaf = name.rpartition("/")
        if leaf.startswith(".wh."):
            files.pop(f"{folder}/{leaf[4:]}".lstrip("/"), None)
            continue
        if name in WANTED and member.isfile():
            if member.size > FILE_LIMIT:
                raise ResolveError(f"base image layer {layer['digest'][:19]}: /{name} is larger than {FILE_LIMIT} bytes")
            fh = tar.extractfile(member)
            files[name] = fh.read().decode("utf-8", "replace") if fh else ""
        match = PYTHON.match(name)
        if match and (member.isfile() or member.issym()):
            pythons.setdefault(match.group(2), "/" + match.group(1))
