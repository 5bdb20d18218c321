"""Stage merge: several DepSets become one MergedEnvironment, or a MergeError naming both sources.

Constraints on the same package are combined (never overwritten); each keeps its source. When no
source names a conda channel, the environment gets the default channels, as conda reads a file
without ``channels:`` (``conda_default_channels`` in pkgc.toml, else ``defaults``).
"""

from __future__ import annotations

from itertools import combinations

from compiler.deps.satisfiable import satisfiable
from compiler.deps.types import DepSet, MergedDependency, MergedEnvironment, Requirement
from compiler.errors import Conflict, MergeError

DEFAULT_CHANNELS = ("defaults",)  # conda's own default when .condarc names none


def _group(depsets: list[DepSet], manager: str) -> dict[str, list[Requirement]]:
    groups: dict[str, list[Requirement]] = {}
    for depset in depsets:
        for req in depset.requirements:
            if req.manager == manager:
                groups.setdefault(req.name, []).append(req)
    return groups


def _first_conflict(name: str, reqs: list[Requirement]) -> Conflict | None:
    for a, b in combinations(reqs, 2):
        if not satisfiable(",".join(s for s in (a.specifier, b.specifier) if s)):
            return Conflict(name, a.raw, str(a.source), b.raw, str(b.source))
    combined = ",".join(r.specifier for r in reqs if r.specifier)
    if not satisfiable(combined):
        a, b = reqs[0], reqs[-1]
        return Conflict(name, a.raw, str(a.source), b.raw, str(b.source))
    return None


def _merge_one(name: str, manager: str, reqs: list[Requirement]) -> MergedDependency:
    extras = tuple(sorted({e for r in reqs for e in r.extras}))
    return MergedDependency(name=name, manager=manager, constraints=tuple(reqs), extras=extras)


def merge(depsets: list[DepSet], default_channels: tuple[str, ...] = DEFAULT_CHANNELS) -> MergedEnvironment:
    """Merge every source's requirements; conda and pip constraints on one package must agree too."""
    conflicts: list[Conflict] = []
    merged: dict[str, list[MergedDependency]] = {"conda": [], "pip": []}
    groups = {m: _group(depsets, m) for m in ("conda", "pip")}
    for manager in ("conda", "pip"):
        for name, reqs in sorted(groups[manager].items()):
            conflict = _first_conflict(name, reqs)
            if conflict:
                conflicts.append(conflict)
            else:
                merged[manager].append(_merge_one(name, manager, reqs))
    for name in sorted(set(groups["conda"]) & set(groups["pip"])):
        conflict = _first_conflict(name, groups["conda"][name] + groups["pip"][name])
        if conflict:
            conflicts.append(conflict)
    if conflicts:
        raise MergeError(conflicts)
    channels = tuple(dict.fromkeys(c for d in depsets for c in d.channels)) or tuple(default_channels)
    return MergedEnvironment(
        channels=channels,
        conda=tuple(merged["conda"]),
        pip=tuple(merged["pip"]),
        sources=tuple(d.source for d in depsets),
    )
