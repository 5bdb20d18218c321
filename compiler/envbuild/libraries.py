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
from dataclasses import dataclass, field
from pathlib import Path

from compiler.envbuild.elf import is_elf, read_links

# Provided at run time by the NVIDIA container toolkit from the host's driver, never by an image.
DRIVER_LIBRARIES = ("libcuda.so", "libnvidia-", "libnvcuvid.so", "libnvoptix.so", "libGLX_nvidia.so", "libEGL_nvidia.so")
# Where Debian's ld.so looks with no configuration; a base's ld.so.conf.d adds to these.
STANDARD_DIRS = ("lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib", "lib/x86_64-linux-gnu",
                 "usr/lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu")  # fmt: skip
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


@dataclass
class _Found:
    provided: set[str] = field(default_factory=set)
    wanting: dict[str, tuple[set[str], str]] = field(default_factory=dict)


def external_needs(root: Path, prefix: str) -> list[Need]:
    """What the environment staged at ``root`` (in the image at ``prefix``) needs from the base."""
    owners = _owners(root)
    found = _Found()
    pending: list[tuple[str, str, tuple[str, ...]]] = []  # (rel path, soname, search dirs)
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if not is_elf(path):
                continue
            links = read_links(path)
            rel = path.relative_to(root).as_posix()
            found.provided.add(name)
            if links is None:
                continue
            if links.soname:
                found.provided.add(links.soname)
            here = os.path.dirname(rel)
            search = tuple(_expand(entry, here, prefix) for entry in links.runpath)
            pending.extend((rel, soname, search) for soname in links.needed)
    for rel, soname, search in pending:
        if soname in found.provided or any((root / d / soname).exists() for d in search if d is not None):
            continue
        packages, example = found.wanting.setdefault(soname, (set(), f"{prefix}/{rel}"))
        packages.add(owners.get(rel, rel.split("/")[0]))
    return [Need(s, tuple(sorted(p)), e) for s, (p, e) in sorted(found.wanting.items())]


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
        name = _dist_name(record.parent)
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


def _dist_name(dist_info: Path) -> str:
    metadata = dist_info / "METADATA"
    try:
        for line in metadata.read_text(encoding="utf-8", errors="replace")[:65536].splitlines():
            if line.lower().startswith("name:"):
                return line.split(":", 1)[1].strip()
            if not line:
                break
    except OSError:
        pass
    return dist_info.name.split("-", 1)[0]
