"""Read what the OCI back end needs from a base image's layers: ``/etc/passwd``, ``/etc/group``
(the package user is appended to them), where its ``python3.X`` lives (the venv's home) and the
shared libraries its dynamic loader finds (to check the environment's needs at build time), and what
identifies each Python's build (the digest of its executable, ``libpython`` and standard library:
the interpreter that compiles the environment's byte-code, ``compiler.backends.oci.base_python``).

Scanned once per base manifest digest; the result is cached beside the store."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import asdict, dataclass, field

from compiler.envbuild.libraries import STANDARD_DIRS, standard_dirs
from compiler.errors import BuildError, ResolveError
from compiler.oci.base import BaseImage
from compiler.oci.compress import READ_ERRORS, open_layer
from compiler.oci.store import OciStore
from compiler.plan.types import BasePackage
from compiler.platform import Platform

WANTED = {"etc/passwd", "etc/group"}
PYTHON = re.compile(r"^(usr/local/bin|usr/bin|bin|opt/[^/]+/bin)/python(3\.\d+)$")
LIBRARY = re.compile(r"^(.+)/([^/]+\.so(\.[0-9]+)*)$")
LIBPYTHON = re.compile(r"^(?:.+/)?libpython(3\.\d+)\.so(?:\.[0-9.]+)?$")
# a Python's own library (its standard library and compiled files; not its site folders): what the
# compiling interpreter runs besides its executable, so part of its build identity
STDLIB = re.compile(r"^(?:usr/local|usr|opt/[^/]+|opt/[^/]+/envs/[^/]+)/lib/python(3\.\d+)/(?!(?:site|dist)-packages(?:/|$)).+$")
LD_CONF = re.compile(r"^etc/ld\.so\.conf(\.d/[^/]+\.conf)?$")
# dist-info of a Python the image has: /usr/local (python:3.X images), Debian's dist-packages, /opt/conda ...
DIST_INFO = re.compile(r"^((?:usr/local|usr|opt/[^/]+|opt/[^/]+/envs/[^/]+)/lib/python3(?:\.\d+)?/(?:site|dist)-packages)"
                       r"/[^/]+\.dist-info/METADATA$")
METADATA_MAX = 1 << 20  # bytes of one METADATA file read
SCAN_VERSION = 6
BUILD_FILE_LIMIT = 1 << 30  # bytes of a python executable or libpython hashed
FILE_LIMIT = 4 << 20  # /etc/passwd, /etc/group, ld.so.conf files: larger is not a base image pkgc builds on


@dataclass(frozen=True)
class BaseScan:
    passwd: str = ""
    group: str = ""
    pythons: dict[str, str] = field(default_factory=dict)  # "3.11" -> "/usr/bin"
    libraries: tuple[str, ...] = ()  # file names of the shared libraries on the loader's path
    packages: tuple[BasePackage, ...] = ()  # Python distributions installed in the image, every site folder
    python_builds: dict[str, str] = field(default_factory=dict)  # "3.11" -> sha256 of its executable and libpython

    def python_packages(self, python: str) -> tuple[BasePackage, ...]:
        """What the image's ``python`` (major.minor) imports without a venv of its own."""
        folders = (f"/lib/python{python}/", "/lib/python3/")
        return tuple(p for p in self.packages if any(f in p.site + "/" for f in folders))

    def python_home(self, python: str) -> str | None:
        return self.pythons.get(python)


def _members(store: OciStore, layer: dict):
    with open(store.blobs.path(layer["digest"]), "rb") as raw:
        try:
            fh = open_layer(raw, layer.get("mediaType", ""))
        except ValueError as exc:
            raise BuildError(f"base image layer {layer['digest'][:19]} has {exc}") from None
        with fh, tarfile.open(fileobj=fh, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                yield member, tar


def scan_base(store: OciStore, base: BaseImage) -> BaseScan:
    cache = store.root / "scans" / f"{base.manifest_digest.split(':', 1)[1]}.json"
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("version") == SCAN_VERSION:
            packages = tuple(BasePackage(p["name"], p["version"], p["site"], tuple(p["requires"])) for p in data["packages"])
            return BaseScan(data["passwd"], data["group"], data["pythons"], tuple(data["libraries"]), packages, data["python_builds"])
    found = _Found({}, {}, {}, {}, {})
    for layer in base.layers:
        try:
            _scan_layer(store, layer, found)
        except (OSError, EOFError, tarfile.TarError, *READ_ERRORS) as exc:  # the layer's digest held: its bytes are the image's
            raise ResolveError(f"base image layer {layer['digest'][:19]} is not a readable layer: {exc}") from None
    platform = Platform.from_oci(base.config)  # the base's own loader folders; both platforms' when it states none pkgc knows
    folders = set(standard_dirs(platform) if platform else STANDARD_DIRS) | _configured_dirs(found.files)
    libraries = sorted({lib for folder, names in found.libraries.items() if folder in folders for lib in names})
    installed = tuple(sorted(found.packages.values(), key=lambda p: (p.site, p.name.lower())))
    scan = BaseScan(found.files.get("etc/passwd", ""), found.files.get("etc/group", ""), found.pythons, tuple(libraries), installed,
                    _python_builds(found))  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"version": SCAN_VERSION, **asdict(scan)}, sort_keys=True))
    return scan


@dataclass
class _Found:
    """What the layers read so far hold (a later layer's replace an earlier's)."""

    files: dict[str, str]
    pythons: dict[str, str]
    libraries: dict[str, set[str]]  # folder -> library file names
    packages: dict[str, BasePackage]  # dist-info METADATA path -> what it says
    builds: dict[str, tuple[str, str]]  # python3.X executable, libpython or library file -> (X.Y, sha256 or link target)


def _scan_layer(store: OciStore, layer: dict, found: _Found) -> None:
    """Note the wanted files, the pythons, the libraries and the Python packages of one layer."""
    for member, tar in _members(store, layer):
        name = member.name.lstrip("./").lstrip("/")
        folder, _, leaf = name.rpartition("/")
        if leaf.startswith(".wh."):
            gone = f"{folder}/{leaf[4:]}".lstrip("/")
            found.files.pop(gone, None)
            found.builds = {k: v for k, v in found.builds.items() if k != gone and not k.startswith(gone + "/")}
            found.packages = {k: v for k, v in found.packages.items() if not k.startswith(gone + "/")}
            continue
        site = DIST_INFO.match(name)
        if site and member.isfile() and member.size <= METADATA_MAX:
            fh = tar.extractfile(member)
            package = _distribution(fh.read().decode("utf-8", "replace") if fh else "", "/" + site.group(1))
            if package is not None:
                found.packages[name] = package
        if (name in WANTED or LD_CONF.match(name)) and member.isfile():
            if member.size > FILE_LIMIT:
                raise ResolveError(f"base image layer {layer['digest'][:19]}: /{name} is larger than {FILE_LIMIT} bytes")
            fh = tar.extractfile(member)
            found.files[name] = fh.read().decode("utf-8", "replace") if fh else ""
        library = LIBRARY.match(name)
        if library and (member.isfile() or member.issym()):
            found.libraries.setdefault(library.group(1), set()).add(library.group(2))
        match = PYTHON.match(name)
        if match and (member.isfile() or member.issym()):
            found.pythons.setdefault(match.group(2), "/" + match.group(1))
        owned = LIBPYTHON.match(name) or STDLIB.match(name)
        build = match.group(2) if match else (owned.group(1) if owned else None)
        if build and (member.isfile() or member.issym()):
            found.builds[name] = (build, _content_digest(tar, member, layer) if member.isfile() else "link:" + member.linkname)


def _content_digest(tar: tarfile.TarFile, member: tarfile.TarInfo, layer: dict) -> str:
    if member.size > BUILD_FILE_LIMIT:
        raise ResolveError(f"base image layer {layer['digest'][:19]}: /{member.name.lstrip('./')} is larger than {BUILD_FILE_LIMIT} bytes")
    digest, fh = hashlib.sha256(), tar.extractfile(member)
    while fh is not None and (block := fh.read(1 << 20)):
        digest.update(block)
    return digest.hexdigest()


def _python_builds(found: _Found) -> dict[str, str]:
    """Each Python's build identity: the digest of the paths and digests of its executables, its
    ``libpython`` and its own library (what its interpreter runs when it compiles)."""
    builds: dict[str, list[str]] = {}
    for path, (version, digest) in sorted(found.builds.items()):
        builds.setdefault(version, []).append(f"/{path}={digest}")
    return {version: hashlib.sha256("\n".join(lines).encode()).hexdigest() for version, lines in builds.items()}


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


def _distribution(metadata: str, site: str) -> BasePackage | None:
    """Name, version and Requires-Dist of a dist-info METADATA (its header, up to the first blank line)."""
    name = version = ""
    requires: list[str] = []
    for line in metadata.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "name":
            name = value
        elif key == "version":
            version = value
        elif key == "requires-dist" and len(requires) < 1000:
            requires.append(value[:500])
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name) or not version or len(version) > 64:
        return None
    return BasePackage(name, version, site, tuple(requires))
