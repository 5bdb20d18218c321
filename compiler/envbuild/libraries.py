"""Which shared libraries an assembled environment needs from outside itself.

Every ELF file of the environment is read (``compiler.envbuild.elf``); a needed library is found when
its RUNPATH (``$ORIGIN`` expanded) or the environment holds it. What is left must come from the base
image — or from the GPU driver the container runtime mounts (``libcuda.so.1`` ...). The owning
distribution of each file is read from the environment's records (pip's ``RECORD``, conda's
``conda-meta``), so a missing library is named with the package that needs it."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.envbuild.dist_info import dist_name
from compiler.envbuild.elf import elf_machine, read_links
from compiler.errors import LockError
from compiler.platform import SUPPORTED, Platform

# Provided at run time by the NVIDIA container toolkit from the host's driver, never by an image.
DRIVER_LIBRARIES = ("libcuda.so", "libnvidia-", "libnvcuvid.so", "libnvoptix.so", "libGLX_nvidia.so", "libEGL_nvidia.so")
_PLAIN_DIRS = ("lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib")


def standard_dirs(platform: Platform) -> tuple[str, ...]:
    """Where Debian's ld.so on ``platform`` looks with no configuration (its multiarch folders
    included); a base's ld.so.conf.d adds to these."""
    return (*_PLAIN_DIRS, f"lib/{platform.triplet}", f"usr/lib/{platform.triplet}")


# Every supported platform's: for a scan that does not know its platform.
STANDARD_DIRS = tuple(dict.fromkeys(d for platform in SUPPORTED for d in standard_dirs(platform)))
# The Debian package that ships a library common ML wheels need (for the message's fix).
DEBIAN_PACKAGES = {
    "libgomp.so.1": "libgomp1", "libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1",
    "libgfortran.so.5": "libgfortran5", "libquadmath.so.0": "libquadmath0", "libatomic.so.1": "libatomic1",
    "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0", "libgobject-2.0.so.0": "libglib2.0-0", "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6", "libSM.so.6": "libsm6", "libICE.so.6": "libice6", "libXrender.so.1": "libxrender1",
    "libxcb.so.1": "libxcb1", "libsndfile.so.1": "libsndfile1", "libpython3.11.so.1.0": "libpython3.11",
    "libz.so.1": "zlib1g", "libssl.so.3": "libssl3", "libcrypto.so.3": "libssl3", "libffi.so.8": "libffi8",
    "libopenblas.so.0": "libopenblas0", "libblas.so.3": "libblas3", "liblapack.so.3": "liblapack3",
    "libjpeg.so.62": "libjpeg62-turbo", "libpng16.so.16": "libpng16-16", "libgeos_c.so.1": "libgeos-c1v5",
}  # fmt: skip


@dataclass(frozen=True)
class Need:
    """A library the environment needs from outside itself, and who needs it."""

    soname: str
    packages: tuple[str, ...]
    example: str  # the in-image path of one file that needs it


@dataclass(frozen=True)
class ElfScan:
    """The dynamic-linking facts of (part of) an environment, by environment-relative path: what its
    ELF files provide (file name, soname), its files named like a library (for RUNPATH look-ups), and
    what they need (with their RUNPATH folders inside the environment and their distribution)."""

    provided: tuple[tuple[str, str], ...] = ()  # (path, name)
    libraries: tuple[str, ...] = ()  # paths of files and links named *.so*
    wanted: tuple[tuple[str, str, tuple[str, ...], str], ...] = ()  # (path, soname, search folders, owner)

    def part(self, keep) -> ElfScan:
        """The facts of the paths ``keep(path)`` holds for."""
        return ElfScan(tuple(p for p in self.provided if keep(p[0])), tuple(p for p in self.libraries if keep(p)),
                       tuple(w for w in self.wanted if keep(w[0])))  # fmt: skip

    def open_needs(self) -> ElfScan:
        """The same facts without the needs this part resolves itself (they resolve in any whole)."""
        provided, libraries = _index([self])
        return ElfScan(self.provided, self.libraries, tuple(w for w in self.wanted if not _resolved(w[1], w[2], provided, libraries)))

    def as_json(self) -> dict:
        return {"provided": self.provided, "libraries": self.libraries, "wanted": self.wanted}

    @classmethod
    def from_json(cls, data: dict) -> ElfScan:
        return cls(tuple((str(a), str(b)) for a, b in data["provided"]), tuple(str(p) for p in data["libraries"]),
                   tuple((str(a), str(b), tuple(str(d) for d in c), str(o)) for a, b, c, o in data["wanted"]))  # fmt: skip


def external_needs(root: Path, prefix: str, platform: Platform | None = None) -> list[Need]:
    """What the environment staged at ``root`` (in the image at ``prefix``) needs from the base."""
    return needs_of([scan_elf(root, prefix, platform)], prefix)


def _machine_name(machine: int) -> str:
    return next((str(p) for p in SUPPORTED if p.elf_machine == machine), f"ELF machine {machine}")


def scan_elf(root: Path, prefix: str, platform: Platform | None = None) -> ElfScan:
    """Every ELF file of the environment staged at ``root`` (in the image at ``prefix``), read once; with
    ``platform``, an ELF file of another machine is refused, naming it and its distribution."""
    owners = _owners(root)
    provided: list[tuple[str, str]] = []
    libraries: list[str] = []
    wanted: list[tuple[str, str, tuple[str, ...], str]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if ".so" in name:
                libraries.append(rel)
            machine = None if path.is_symlink() else elf_machine(path)
            if machine is None:
                continue
            if platform is not None and machine != platform.elf_machine:
                owner = owners.get(rel, rel.split("/")[0])
                raise LockError(
                    f"{owner}: {prefix}/{rel} is code for {_machine_name(machine)}, which the {platform} image "
                    f"cannot run; lock a version of {owner} that publishes wheels for {platform.machine}"
                )
            links = read_links(path)
            provided.append((rel, name))
            if links is None:
                continue
            if links.soname:
                provided.append((rel, links.soname))
            here = os.path.dirname(rel)
            search = tuple(d for d in (_expand(entry, here, prefix) for entry in links.runpath) if d is not None)
            owner = owners.get(rel, rel.split("/")[0])
            wanted.extend((rel, soname, search, owner) for soname in links.needed)
    return ElfScan(tuple(provided), tuple(libraries), tuple(wanted))


def needs_of(scans: list[ElfScan], prefix: str) -> list[Need]:
    """What the environment made of ``scans`` (its parts, e.g. its layers) needs from outside itself."""
    provided, libraries = _index(scans)
    wanting: dict[str, tuple[set[str], str]] = {}
    for rel, soname, search, owner in sorted(w for scan in scans for w in scan.wanted):
        if _resolved(soname, search, provided, libraries):
            continue
        packages, _example = wanting.setdefault(soname, (set(), f"{prefix}/{rel}"))
        packages.add(owner)
    return [Need(s, tuple(sorted(p)), e) for s, (p, e) in sorted(wanting.items())]


def _index(scans: list[ElfScan]) -> tuple[set[str], set[str]]:
    return {name for scan in scans for _rel, name in scan.provided}, {rel for scan in scans for rel in scan.libraries}


def _resolved(soname: str, search: tuple[str, ...], provided: set[str], libraries: set[str]) -> bool:
    """An ELF file has the name or soname, or a RUNPATH folder holds the file."""
    return soname in provided or any(os.path.normpath(os.path.join(d, soname)) in libraries for d in search)


LIBPYTHON = re.compile(r"^libpython(\d+\.\d+)")


def missing_from_base(needs: list[Need], base_libraries: frozenset[str], python: str | None = None) -> list[Need]:
    """The needs neither the base image nor the GPU driver (at run time) provides. A ``libpythonX.Y``
    of another Python than the image's (``python``) belongs to a file only that Python loads (a wheel
    shipping stubs for several Pythons, as nvidia-pytriton does): not a need of this image."""
    def other_python(soname: str) -> bool:
        found = LIBPYTHON.match(soname)
        return python is not None and found is not None and found.group(1) != python

    return [n for n in needs if n.soname not in base_libraries and not n.soname.startswith(DRIVER_LIBRARIES)
            and not other_python(n.soname)]  # fmt: skip


def fix_for(soname: str) -> str:
    """What to do about a missing library, in words."""
    package = DEBIAN_PACKAGES.get(soname)
    named = f"the Debian package {package}" if package else "the Debian package that ships it"
    return (f"use a base image that has {named} (a base-image recipe of your own lists it in `packages`: "
            f"pkgc base-image build ./my-base), or allow_missing_libraries in pkgc.toml if it is never loaded")


def _expand(entry: str, here: str, prefix: str) -> str | None:
    """A RUNPATH entry as a folder relative to the environment's root, or None when outside it."""
    path = entry.replace("$ORIGIN", "/" + here).replace("${ORIGIN}", "/" + here)
    if not entry.startswith(("$ORIGIN", "${ORIGIN}")):
        if not path.startswith(prefix.rstrip("/") + "/"):
            return None
        path = path[len(prefix.rstrip("/")):]
    return os.path.normpath(path).lstrip("/")


def _owners(root: Path) -> dict[str, str]:
    """Environment-relative path -> the distribution that installed it (pip RECORDs, conda-meta)."""
    owners: dict[str, str] = {}
    for record in root.glob("lib/python3*/site-packages/*.dist-info/RECORD"):
        name = dist_name(record.parent)
        site = record.parent.parent.relative_to(root).as_posix()
        text = record.read_text(encoding="utf-8", errors="replace")[: 16 << 20]
        for row in csv.reader(io.StringIO(text)):
            if row and not row[0].startswith("/"):
                owners[os.path.normpath(f"{site}/{row[0]}")] = name
    for meta in root.glob("conda-meta/*.json"):
        try:
            data = json.loads(meta.read_text(encoding="utf-8")[: 64 << 20])
        except ValueError:
            continue
        for rel in data.get("files", []) if isinstance(data, dict) else []:
            if isinstance(rel, str):
                owners[rel] = str(data.get("name", meta.stem))
    return owners


