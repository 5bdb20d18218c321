"""The assembled environment's entries by layer group (pure: no I/O): each file where the distribution
that installed it goes, shared files and scaffolding in the rest, folders where their files are."""

from __future__ import annotations

from compiler.envbuild.layer_groups import REST, LayerGroup, owner
from compiler.oci.layer import Entry


def split_entries(
    entries: list[Entry], prefix: str, owners: dict[str, set[str]], groups: list[LayerGroup]
) -> list[tuple[LayerGroup, list[Entry]]]:
    """``entries`` (the environment at ``prefix``) by layer group, groups with no entry left out: a
    file or link goes to the group of the one distribution that installed it (files installed by
    several distributions of one group: that group), else to the rest; a folder is written where a
    file below it is (the layer's parents), an empty one in the rest. Every entry lands once."""
    base = prefix.strip("/") + "/"
    group_of = {member: group.name for group in groups for member in group.members}
    by_group: dict[str, list[Entry]] = {group.name: [] for group in groups}
    filled: set[str] = set()
    for entry in entries:
        if entry.kind == "dir":
            continue
        rel = entry.path[len(base):] if entry.path.startswith(base) else entry.path
        by_group[group_of_file(rel, owners, group_of)].append(entry)
        parent = entry.path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in filled:
                break
            filled.add(parent)
    by_group[REST].extend(e for e in entries if e.kind == "dir" and e.path not in filled)
    return [(group, by_group[group.name]) for group in groups if by_group[group.name]]


def group_of_file(rel: str, owners: dict[str, set[str]], group_of: dict[str, str]) -> str:
    """The group of the environment-relative path ``rel``: its one owner's, its owners' when they share
    one group, else the rest."""
    one = owner(rel, owners)
    if one is not None:
        return group_of.get(one, REST)
    names = {group_of.get(name, REST) for name in owners.get(rel, ())}
    return names.pop() if len(names) == 1 else REST
