"""Which layer each file of an assembled environment goes in: groups of distributions that change together.

The big, slow-changing distributions each get a layer of their own (a CUDA family together, ``torch``
alone, any distribution over ``BIG_BYTES``), ordered so the least often changed come first; everything
else — small distributions, files several distributions install (namespace ``__init__.py``), the
venv's scaffolding — is "the rest", always the last layer. A file goes where the one distribution
that installed it (pip ``RECORD``, conda ``conda-meta``) goes; its byte-code goes with its source.
:func:`group_distributions` is pure; :func:`file_owners` reads the environment's records."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from compiler.envbuild.dist_info import dist_name
from compiler.errors import BuildError

BIG_BYTES = 100_000_000  # installed size above which a distribution gets its own layer
MAX_GROUPS = 8  # environment layers at most, "the rest" included
REST = "rest"
# Families that change together (one layer each), in layer order; a name matches a prefix or equals an entry.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cuda", ("nvidia-", "cuda-", "libcublas", "libcufft", "libcurand", "libcusolver", "libcusparse", "libnvjitlink",
              "libnpp", "libnvjpeg", "libcudnn", "cudnn", "nccl", "libnccl", "cutensor", "libcutensor", "cudatoolkit")),
)  # fmt: skip
# Big distributions that get a layer of their own whatever their size, in layer order (after the families).
ALONE = ("triton", "jaxlib", "tensorflow", "libtorch", "pytorch", "torch")
_PYC = re.compile(r"^(?P<dir>(?:.*/)?)__pycache__/(?P<stem>[^/.]+)\.[^/]+\.pyc$")


@dataclass(frozen=True)
class LayerGroup:
    """One environment layer: its name and the distributions (canonical names) whose files it holds."""

    name: str
    members: tuple[str, ...]


def canonical(name: str) -> str:
    """PEP 503 normalised: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _family(name: str) -> str | None:
    for family, prefixes in FAMILIES:
        if name.startswith(prefixes):
            return family
    return None


def group_distributions(sizes: dict[str, int], big: int = BIG_BYTES, cap: int = MAX_GROUPS) -> list[LayerGroup]:
    """Distributions (canonical name -> installed bytes) in layer groups, in layer order: the families
    (``FAMILIES``), the ``ALONE`` ones, the others of at least ``big`` bytes by name, then "the rest"
    (always present, possibly empty). At most ``cap`` groups: past it, the smallest big ones join the
    rest (the families and the named ones last)."""
    families: dict[str, list[str]] = {}
    alone: list[str] = []
    other: list[str] = []
    rest: list[str] = []
    for name in sorted(sizes):
        family = _family(name)
        if family is not None:
            families.setdefault(family, []).append(name)
        elif name in ALONE:
            alone.append(name)
        elif sizes[name] >= big:
            other.append(name)
        else:
            rest.append(name)
    named = [LayerGroup(f, tuple(families[f])) for f, _ in FAMILIES if f in families]
    named += [LayerGroup(name, (name,)) for name in sorted(alone, key=ALONE.index)]
    groups = named + [LayerGroup(name, (name,)) for name in other]
    while len(groups) > max(cap - 1, 0):  # the smallest goes, the families and named ones last
        smallest = min(groups, key=lambda g: (g in named, sum(sizes[m] for m in g.members), g.name))
        groups.remove(smallest)
        rest.extend(smallest.members)
    return [*groups, LayerGroup(REST, tuple(sorted(rest)))]


def owner_of_pyc(rel: str) -> str | None:
    """``a/__pycache__/b.cpython-311.pyc`` -> ``a/b.py`` (the source its owner installed), else None."""
    found = _PYC.match(rel)
    return f"{found.group('dir')}{found.group('stem')}.py" if found else None


def file_owners(root: Path, limit: int = 64 << 20) -> dict[str, set[str]]:
    """Environment-relative path -> every distribution (canonical name) that lists it: pip ``RECORD``s
    (a dist-info folder's unlisted files are its own) and conda ``conda-meta`` records. Bounded reads."""
    owners: dict[str, set[str]] = {}
    for record in sorted(root.glob("lib/python3*/site-packages/*.dist-info/RECORD")):
        name = canonical(dist_name(record.parent))
        site = record.parent.parent.relative_to(root).as_posix()
        owners.setdefault(record.parent.relative_to(root).as_posix() + "/", set()).add(name)
        with open(record, encoding="utf-8", errors="replace") as fh:
            text = fh.read(limit)
        for row in csv.reader(io.StringIO(text)):
            if row and row[0] and not row[0].startswith("/"):
                owners.setdefault(os.path.normpath(f"{site}/{row[0]}"), set()).add(name)
    for meta in sorted(root.glob("conda-meta/*.json")):
        try:
            with open(meta, encoding="utf-8") as fh:
                data = json.loads(fh.read(limit))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        name = canonical(str(data.get("name", meta.stem)))
        owners.setdefault(f"conda-meta/{meta.name}", set()).add(name)
        for rel in data.get("files", []):
            if isinstance(rel, str):
                owners.setdefault(os.path.normpath(rel), set()).add(name)
    return owners


def owner(rel: str, owners: dict[str, set[str]]) -> str | None:
    """The one distribution that installed ``rel`` (its byte-code: its source's; a dist-info folder's
    file: that distribution's); None when none or several did."""
    found = owners.get(rel)
    if found is None and (source := owner_of_pyc(rel)) is not None:
        found = owners.get(source)
    if found is None and ".dist-info/" in rel:
        found = owners.get(rel[: rel.index(".dist-info/") + len(".dist-info/")])
    return next(iter(found)) if found is not None and len(found) == 1 else None


def installed_sizes(root: Path, owners: dict[str, set[str]]) -> dict[str, int]:
    """Canonical distribution name -> bytes of the files it alone installed under ``root``."""
    sizes = {name: 0 for names in owners.values() for name in names}
    for folder, _dirs, files in os.walk(root):
        for filename in files:
            path = Path(folder) / filename
            name = owner(path.relative_to(root).as_posix(), owners)
            if name is not None and not path.is_symlink():
                sizes[name] += path.stat().st_size
    return sizes


@dataclass(frozen=True)
class WheelFacts:
    """What a wheel installs, read from its zip directory before anything is installed."""

    name: str  # canonical distribution name
    file: str  # the wheel's file name
    size: int  # uncompressed bytes
    paths: frozenset[str]  # where its files land, relative to the environment (site-packages relative, or bin/...)


def wheel_facts(wheel: Path) -> WheelFacts:
    """A wheel's name, size and installed paths (scripts and console scripts as ``bin/NAME``)."""
    paths: set[str] = set()
    size = 0
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                size += info.file_size
                paths |= _lands_at(zf, info)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"{wheel}: not a readable wheel ({exc})") from None
    return WheelFacts(canonical(wheel.name.split("-", 1)[0]), wheel.name, size, frozenset(paths))


def _lands_at(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> set[str]:
    """Where one member of a wheel lands: site-packages relative, ``bin/`` for scripts and the
    console scripts its ``entry_points.txt`` names, ``data/`` for data; nothing for folders."""
    parts = info.filename.split("/")
    if parts[0].endswith(".dist-info"):
        if parts[-1] == "entry_points.txt" and info.file_size < 1 << 20:
            return {f"bin/{script}" for script in _scripts(zf.read(info).decode("utf-8", "replace"))}
        return set()
    if info.filename.endswith("/"):
        return set()
    if parts[0].endswith(".data") and len(parts) > 2:
        kind, rest = parts[1], "/".join(parts[2:])
        return {{"scripts": f"bin/{rest}", "data": f"data/{rest}"}.get(kind, rest)}
    return {info.filename}


def _scripts(entry_points: str) -> list[str]:
    names, section = [], ""
    for line in entry_points.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif "=" in line and section in ("console_scripts", "gui_scripts"):
            names.append(line.split("=", 1)[0].strip())
    return names


def shared_paths(wheels: list[WheelFacts], group_of: dict[str, str]) -> dict[str, list[str]]:
    """Group name -> the paths its wheels install that a wheel of another group installs too."""
    claimed: dict[str, set[str]] = {}
    for facts in wheels:
        for path in facts.paths:
            claimed.setdefault(path, set()).add(group_of.get(facts.name, REST))
    shared: dict[str, list[str]] = {}
    for path, groups in sorted(claimed.items()):
        if len(groups) > 1:
            for group in groups:
                shared.setdefault(group, []).append(path)
    return shared
